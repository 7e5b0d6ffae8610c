#pragma once
// Sends the prepared requests at vLLM's arrival schedule (all at once, or Poisson/gamma at a rate) under
// an optional concurrency cap, and records each streamed response. The calling thread only schedules;
// responses are parsed on the client's I/O thread(s), so no thread exists per request.
#include "tools/bench/http_client.hpp"
#include "tools/bench/metrics.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace troupe::bench {

struct PreparedRequest {
  std::string body;  // the JSON payload
  int prompt_len = 0;
};

struct RunOptions {
  std::string target;  // e.g. /v1/completions
  bool chat = false;
  double request_rate = 1.0 / 0.0;
  double burstiness = 1.0;
  std::optional<int> max_concurrency;
  std::uint64_t seed = 0;
  bool progress = true;  // a bar on stderr
  double stop_after_s = 0;  // > 0: start no request after this long (llmperf's --timeout)
};

struct RunResult {
  std::vector<RequestOutput> outputs;  // in request order; requests never started are left out
  double duration_s = 0;               // first send to last completion
};

// vLLM's get_request(): cumulative send times in seconds. Constant rate: gamma(shape=burstiness,
// scale=1/(rate*burstiness)) gaps (burstiness 1: Poisson), rescaled so the last send is at n/rate.
std::vector<double> arrival_times(std::size_t n, double request_rate, double burstiness, std::uint64_t seed);

RunResult run_requests(HttpClient& client, const std::vector<PreparedRequest>& reqs, const RunOptions& o);

// One request, waited for (the readiness probe).
RequestOutput run_one(HttpClient& client, const std::string& target, bool chat, const PreparedRequest& r);

}  // namespace troupe::bench
