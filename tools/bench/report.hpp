#pragma once
// vLLM's printed "Serving Benchmark Result" block and its saved-result JSON, key for key and in order.
#include "tools/bench/metrics.hpp"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

namespace troupe::bench {

struct ReportContext {
  std::string backend, label, model_id;
  std::optional<std::string> tokenizer_id;
  int num_prompts = 0;
  double request_rate = 0, burstiness = 1;
  std::optional<int> max_concurrency;
  std::vector<std::string> percentile_metrics;  // ttft, tpot, itl, e2el, client_queue_time, ...
  std::vector<double> percentiles;
  bool goodput = false, save_detailed = false;
  std::string date;  // %Y%m%d-%H%M%S
};

// Prints the block to stdout and returns the result JSON (vLLM's result_json, detail lists included only
// with save_detailed).
nlohmann::ordered_json report(const ReportContext& ctx, const BenchmarkMetrics& m,
                              const std::vector<RequestOutput>& outputs, double duration_s);

// vLLM's default file name: {label or backend}-{rate}qps[-concurrency{N}]-{model basename}-{date}.json.
std::string default_result_filename(const ReportContext& ctx);

// "ttft,tpot" -> {"ttft", "tpot"}; "99,99.9" -> {99, 99.9}. Throws std::invalid_argument.
std::vector<std::string> split_list(const std::string& s);
std::vector<double> parse_percentiles(const std::string& s);

std::string centered(const std::string& title, char fill, int width = 50);  // Python's "{:c^w}"

}  // namespace troupe::bench
