#pragma once
// The `sim` backend: no model. A step takes step_us + prefill_token_us * (prefill tokens) +
// decode_seq_us * (decoding sequences), and the token at position p of a request is a byte of a fixed
// text, picked by the prompt's first token, the request's seed and p -- so output is deterministic, readable, independent of how
// requests were batched or preempted, and never EOS.
#include "actors/gpu_worker/backend.hpp"

#include <span>


namespace troupe {

class SimBackend final : public Backend {
 public:
  BackendInfo init(schema::WorkerInit::Reader init) override;
  SampledTokens execute(const std::vector<WorkerRequest*>& batch) override;

  // The token the sim model produces at absolute position `pos` of a request.
  static std::int32_t token_at(std::int32_t first_token, std::uint64_t seed, std::size_t pos);
  // Fake logprobs, deterministic: the sampled token gets 0.0; with top_n >= 0, `top` holds top_n entries,
  // the sampled token first (0.0), then other distinct ids with logprobs -1, -2, ... They are no model's.
  static SampleResult fake_logprobs(std::int32_t token, std::int32_t top_n);
  // Fake prompt logprobs for prompt tokens 1..n-1, consistent among themselves: prompt token i has rank
  // 1 + i % 3 and logprob -(rank - 1); top k (0-based) has logprob -k and is the prompt token at k = rank - 1.
  static std::vector<PositionLogprob> fake_prompt_logprobs(std::span<const std::int32_t> prompt, std::int32_t top_n);
  static double step_us(double step, double per_prefill_token, double per_decode_seq, std::uint64_t prefill_tokens,
                        std::uint64_t decode_seqs);

 private:
  double step_us_ = 0, prefill_us_ = 0, decode_us_ = 0;
};

}  // namespace troupe
