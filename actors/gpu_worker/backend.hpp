#pragma once
// What a gpu_worker runs its steps on. `cuda` is the real device, `cpu` the exact reference,
// `sim` a cost model with deterministic tokens. The worker keeps the batch state; a backend only
// computes the scheduled tokens and samples for the requests whose prompt is complete.
#include "actors/gpu_worker/batch_state.hpp"
#include "runtime/schema/messages.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

namespace troupe {

struct BackendInfo {
  std::string device;
  std::uint32_t num_blocks = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual BackendInfo init(schema::WorkerInit::Reader init) = 0;  // throws std::runtime_error on failure
  // Executes the scheduled tokens; returns the sampled token of each request with sample_now(), with its
  // logprobs (sampled token + top N) when the request's sampling.logprobs >= 0.
  virtual SampledTokens execute(const std::vector<WorkerRequest*>& batch) = 0;
};

// Throws std::runtime_error naming the backend when it does not exist in this build.
std::unique_ptr<Backend> make_backend(const std::string& name);

}  // namespace troupe
