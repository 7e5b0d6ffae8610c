#pragma once
// One request as the scheduler sees it. `num_computed` catches up with `tokens.size()`; that one rule
// covers prefill, chunked prefill, decode, prefix-cache hits and recompute after preemption (vLLM v1's model).
#include "runtime/schema/messages.hpp"

#include <cstdint>
#include <vector>

namespace troupe {

enum class RequestStatus { waiting, running, finished };

struct RequestState {
  std::uint64_t id = 0;
  SubmitMsg submit;                  // the frozen submit message: prompt and sampling travel from here
  std::vector<std::int32_t> tokens;  // prompt, then generated tokens
  std::uint32_t num_prompt = 0;
  std::uint32_t num_computed = 0;    // tokens whose KV is in the cache
  std::uint32_t num_blocks = 0;      // blocks held, as granted by the kv manager
  std::vector<std::uint32_t> new_blocks;  // granted this step, not yet sent to the workers
  bool known_to_workers = false;     // false: the next plan sends it whole (NewRequest)
  RequestStatus status = RequestStatus::waiting;
  std::int64_t arrival_ns = 0;
  std::uint64_t arrival_seq = 0;     // FCFS order among equals

  // Prefix caching: the hash chain of the full blocks, and how many of them the kv manager has.
  std::vector<std::uint64_t> block_hashes;
  std::uint32_t hashes_sent = 0;

  // Timestamps for the latency histograms (0: not yet).
  std::int64_t first_scheduled_ns = 0;
  std::int64_t last_token_ns = 0;

  // Stop rule, copied out of the submit message once.
  std::uint32_t max_tokens = 16;
  std::uint32_t min_tokens = 0;
  bool ignore_eos = false;
  std::int32_t eos = -1;
  std::vector<std::int32_t> stop_ids;

  std::uint32_t num_output() const { return static_cast<std::uint32_t>(tokens.size()) - num_prompt; }
  std::uint32_t num_tokens() const { return static_cast<std::uint32_t>(tokens.size()); }
};

}  // namespace troupe
