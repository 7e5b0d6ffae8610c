#pragma once
// The serving-benchmark metrics, defined exactly as vLLM's benchmarks/serve.py computes them, so a
// number from `troupe bench` means what the same number from `vllm bench serve` means.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace troupe::bench {

// One request as the client saw it. Times are seconds; start_time is on the steady clock.
struct RequestOutput {
  bool success = false;
  std::string error;
  std::string generated_text;
  int prompt_len = 0;     // the dataset's count, replaced by usage.prompt_tokens when the server sends it
  int output_tokens = 0;  // usage.completion_tokens, else counted (see ResponseRecorder); 0: unknown
  double ttft = 0;        // first token chunk - start
  double latency = 0;     // last token chunk - start (E2EL)
  double start_time = 0;
  double queue_time = 0;  // start - arrival: time spent waiting for a --max-concurrency slot
  std::vector<double> itl;  // one gap per token chunk after the first
};

// numpy's defaults: linear interpolation between closest ranks, population standard deviation.
// An empty sample gives 0 (vLLM passes `xs or 0`).
double percentile(std::vector<double> xs, double p);
double mean(std::span<const double> xs);
double stddev(std::span<const double> xs, int ddof = 0);

struct Summary {  // in milliseconds, like vLLM's *_ms fields
  double mean = 0, median = 0, std = 0;
  std::vector<std::pair<double, double>> percentiles;  // (p, value)
};
Summary summarize_ms(const std::vector<double>& seconds, std::span<const double> ps);

// --goodput ttft:MS tpot:MS e2el:MS. A request is good when it meets every given objective.
struct Goodput {
  std::optional<double> ttft_ms, tpot_ms, e2el_ms;
  bool any() const { return ttft_ms || tpot_ms || e2el_ms; }
};
// Throws std::invalid_argument with vLLM's wording on a bad pair or name.
Goodput parse_goodput(const std::vector<std::string>& pairs);

struct BenchmarkMetrics {
  int completed = 0, failed = 0;
  std::int64_t total_input = 0, total_output = 0;
  double request_throughput = 0, request_goodput = 0, output_throughput = 0, total_token_throughput = 0;
  Summary ttft, tpot, itl, e2el;
  double max_output_tokens_per_s = 0;  // the busiest one-second bucket
  int max_concurrent_requests = 0;     // requests active in the busiest one-second bucket
  std::vector<int> actual_output_lens;  // per request, 0 for failures
};

BenchmarkMetrics calculate_metrics(const std::vector<RequestOutput>& outputs, double duration_s,
                                   std::span<const double> percentiles, const Goodput& goodput);

// Python's str(float) for the numbers vLLM prints into keys and file names ("99", "99.9", "inf", "10.0").
std::string py_float(double v, bool int_if_whole);

}  // namespace troupe::bench
