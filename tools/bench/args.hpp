#pragma once
// `troupe bench` command line: vLLM's benchmark_serving.py / `vllm bench serve` flag names (the subset
// that applies), plus llmperf's token_benchmark_ray.py flags for --llmperf.
#include "tools/bench/dataset.hpp"

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

namespace troupe::bench {

struct LlmperfArgs {  // llmperf's defaults
  double mean_input_tokens = 550, stddev_input_tokens = 150;
  double mean_output_tokens = 150, stddev_output_tokens = 80;
  int num_concurrent_requests = 10, max_num_completed_requests = 10;
  double timeout_s = 90;  // stop starting requests after this long
  std::string results_dir;
};

struct BenchArgs {
  std::string base_url, host = "127.0.0.1", endpoint;  // endpoint "": the backend's
  int port = 8000;
  std::string backend = "openai";  // openai (alias vllm) | openai-chat
  std::string model, served_model_name, tokenizer, label;
  std::string dataset_name = "random";
  RandomDatasetOptions random;
  double request_rate = std::numeric_limits<double>::infinity(), burstiness = 1.0;
  std::optional<int> max_concurrency;
  bool ignore_eos = false;
  std::string percentile_metrics = "ttft,tpot,itl", metric_percentiles = "99";
  std::vector<std::string> goodput;
  bool save_result = false, save_detailed = false, disable_tqdm = false;
  std::string result_filename, result_dir;
  std::uint64_t seed = 0;
  double ready_check_timeout_sec = 600;
  int client_threads = 1;
  bool llmperf = false;
  LlmperfArgs lp;

  bool chat() const { return backend == "openai-chat"; }
};

struct Url {
  std::string host;
  std::uint16_t port = 80;
  std::string path;  // "" or "/prefix", no trailing slash
};
// http://host[:port][/path]; nullopt for anything else (https is not supported).
std::optional<Url> parse_url(const std::string& url);

// Throws std::invalid_argument naming the flag. Sets *help when --help was asked for.
BenchArgs parse_bench_args(const std::vector<std::string>& args, bool* help);
const char* bench_usage();

}  // namespace troupe::bench
