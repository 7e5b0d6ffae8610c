#pragma once
// The worker's persistent view of the running batch, rebuilt from the scheduler's diffs (StepPlan):
// per request its tokens, how many have KV, and its block table. Every backend executes from this.
// It also checks the plan's invariants, so a scheduler bug shows up as a failed step, not silent
// corruption: no block written by two requests (cached prefix blocks are shared, read-only), enough
// blocks for the tokens scheduled, no unknown request.
#include "model/sampling/sampling.hpp"
#include "runtime/schema/messages.hpp"

#include <cstdint>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace troupe {

struct WorkerRequest {
  std::uint64_t id = 0;
  std::vector<std::int32_t> tokens;
  std::uint32_t num_computed = 0;
  std::uint32_t num_scheduled = 0;  // this step
  std::vector<std::uint32_t> blocks;
  std::uint64_t sampling_seed = 0;  // the request's seed, 0 when it has none
  bool has_seed = false;
  SamplingOptions sampling;         // NewRequest.sampling (+ its eosTokenId)
  std::uint32_t num_prompt = 0;     // tokens[0, num_prompt) are the prompt, the rest its outputs
  // prompt_logprobs: entries for prompt tokens 1..k gathered over the prefill chunks so far. They go out
  // with the first sampled token; a request resumed after it had outputs does not gather them again.
  std::vector<PositionLogprob> prompt_lps;
  bool sample_now() const { return num_scheduled > 0 && num_computed + num_scheduled >= tokens.size(); }
  bool gathers_prompt_logprobs() const { return sampling.prompt_logprobs >= 0 && tokens.size() == num_prompt; }
};

// What a step sampled, per request: the token and, when the request asked for them, its logprobs.
using SampledTokens = std::unordered_map<std::uint64_t, SampleResult>;

// The schema's sampling params as the sampler takes them.
SamplingOptions sampling_options(schema::SamplingParams::Reader p, std::int32_t eos_token_id);

// A sampled token's prompt logprobs (SampleResult.prompt_logprobs) into the step result's output.
void write_prompt_logprobs(schema::SampledOutput::Builder out, const SampleResult& s);

class BatchState {
 public:
  explicit BatchState(std::uint32_t block_size) : block_size_(block_size) {}
  // Applies the plan's diffs; returns an error message, or empty when the plan is consistent.
  std::string apply(schema::StepPlan::Reader plan);
  // After execution: the scheduled tokens now have KV; sampled tokens join the requests that sampled.
  void commit(const SampledTokens& sampled);

  std::vector<WorkerRequest*> scheduled() const { return scheduled_; }
  std::size_t size() const { return requests_.size(); }

 private:
  std::string add_blocks(WorkerRequest& r, capnp::List<std::uint32_t>::Reader ids, std::uint32_t num_shared);
  std::uint32_t block_size_;
  std::unordered_map<std::uint64_t, WorkerRequest> requests_;
  std::unordered_map<std::uint32_t, std::uint32_t> owned_;  // block -> holders (>1 only for prefix-cache hits)
  std::vector<WorkerRequest*> scheduled_;
};

}  // namespace troupe
