#pragma once
#include "tools/bench/args.hpp"
#include "tools/bench/metrics.hpp"

#include <nlohmann/json.hpp>

#include <vector>

namespace troupe::bench {

// llmperf's token_benchmark_ray.py: a fixed number of concurrent chat requests with normally distributed
// input/output lengths until --max-num-completed-requests finish (or --timeout passes); prints llmperf's
// summary and, with --results-dir, writes its summary and individual-responses files.
int llmperf_benchmark(const BenchArgs& a);

// llmperf's metrics_summary() over the successful requests: quantiles p25..p99 (pandas: linear), mean,
// min, max, stddev (sample, ddof 1) of each per-request metric, plus error and throughput totals.
// Printed as llmperf prints it; returned flattened as its summary file stores it ("results_ttft_s_mean").
nlohmann::ordered_json llmperf_summary(const std::vector<RequestOutput>& outputs, double duration_s, bool print);

}  // namespace troupe::bench
