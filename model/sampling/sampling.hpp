#pragma once
// Sampling one token from a logits row, with vLLM's semantics: min_tokens masks EOS and stop ids;
// repetition penalty over prompt + output, presence/frequency penalties over output only; then greedy
// (temperature 0) or temperature, min_p, top_k, top_p and a draw. The draw is counter-based, keyed by
// (seed, position): a preempted and resumed request samples exactly the same tokens.
#include <cstdint>
#include <span>
#include <vector>

namespace troupe {

struct SamplingOptions {
  float temperature = 1.0f;   // < 1e-5: greedy
  float top_p = 1.0f;
  std::int32_t top_k = -1;    // -1 or 0: all
  float min_p = 0.0f;
  float presence_penalty = 0.0f, frequency_penalty = 0.0f, repetition_penalty = 1.0f;
  std::uint32_t min_tokens = 0;
  std::vector<std::int32_t> stop_token_ids;
  std::int32_t eos_token_id = -1;
  bool ignore_eos = false;
  std::int32_t logprobs = -1; // -1: none; N: the sampled token's logprob and the top N
  std::int32_t prompt_logprobs = -1;  // -1: none; N: each prompt token's logprob, rank and the top N
};

struct TokenLogprob {
  std::int32_t token = 0;
  float logprob = 0;
};

// One position's logprob of a given token (a prompt token: vLLM's prompt_logprobs), of the raw logits.
struct PositionLogprob {
  float logprob = 0;
  std::uint32_t rank = 0;          // 1 + tokens more likely; ties count against it (vLLM: logprobs >= its own)
  std::vector<TokenLogprob> top;   // the N most likely tokens, best first (ties: lower id first)
};

struct SampleResult {
  std::int32_t token = 0;
  float logprob = 0;               // of the sampled token (when logprobs >= 0)
  std::vector<TokenLogprob> top;   // the `logprobs` most likely tokens, best first
  // With the request's first token when it asked for prompt_logprobs: entry i is prompt token i+1's
  // (the first prompt token has none: nothing precedes it).
  std::vector<PositionLogprob> prompt_logprobs;
};

// In place. vLLM: a positive logit is divided by the repetition penalty, a negative one multiplied.
void apply_penalties(std::span<float> logits, std::span<const std::int32_t> prompt,
                     std::span<const std::int32_t> output, const SamplingOptions& o);
// Until `min_tokens` outputs exist, EOS (unless ignore_eos) and the stop ids cannot be sampled.
void apply_min_tokens(std::span<float> logits, std::size_t num_output, const SamplingOptions& o);
// A uniform in [0, 1) from (seed, position): the same pair always gives the same value.
double uniform01(std::uint64_t seed, std::uint64_t position);
// log_softmax of the logits, as float.
std::vector<float> log_softmax(std::span<const float> logits);

// log_softmax(logits)[token], its rank and the top `num_top` (0: none) — what vLLM reports per prompt position.
PositionLogprob position_logprob(std::span<const float> logits, std::int32_t token, std::int32_t num_top);

// Samples the token after prompt + output. `logits` is modified (penalties, masks, temperature).
// Logprobs are of the raw logits (vLLM's default), before penalties and temperature.
SampleResult sample(std::span<float> logits, const SamplingOptions& o, std::span<const std::int32_t> prompt,
                    std::span<const std::int32_t> output, std::uint64_t seed);

}  // namespace troupe
