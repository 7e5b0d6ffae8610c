#pragma once
// Sampling on the GPU: one row of logits per request that samples this step. Penalties are applied to the
// logits first (apply_penalties), then each row is sampled with its own parameters and seed. Rows with
// temperature 0 are greedy (argmax, lowest id on ties, as the cpu sampler). Other rows keep the cpu
// sampler's kept set (min_p, then top_k, then top_p, ties by lowest id) and draw by Gumbel-max keyed by
// (seed, step): reproducible, the same distribution as the cpu's inverse-CDF draw, not the same tokens.
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace troupe::kernels {

struct SampleParams {           // one per row, in device memory
  float temperature = 1.0f;     // 0: greedy
  float top_p = 1.0f;
  float min_p = 0.0f;
  int top_k = -1;               // -1: all
  std::uint64_t seed = 0;       // the request's seed; with `step` it makes the draw reproducible
  std::uint64_t step = 0;       // the output index being sampled
  float presence_penalty = 0.0f, frequency_penalty = 0.0f, repetition_penalty = 1.0f;
  int num_logprobs = -1;        // -1: none; N: logprob of the sampled token and the top N
};

// Penalties as vLLM applies them. counts: [rows, vocab] uint16 of output-token occurrences; prompt_mask:
// [rows, vocab] uint8, 1 where the token occurs in the prompt (repetition penalty covers prompt and output).
void apply_penalties(float* logits, int rows, int vocab, const SampleParams* params, const std::uint16_t* counts,
                     const std::uint8_t* prompt_mask, cudaStream_t s);

std::size_t sample_workspace_bytes(int rows, int vocab);  // the sampler needs none today: a small constant
// tokens [rows]; logprob [rows] (log-softmax of the logits given to sample, before temperature and filters, at
// the sampled token; vLLM and the cpu sampler report raw logits, so keep a copy if penalties ran in place);
// top_ids / top_logprobs [rows, max_logprobs] for rows that ask (num_logprobs <= max_logprobs).
void sample(const float* logits, int rows, int vocab, const SampleParams* params, void* workspace,
            std::int32_t* tokens, float* logprob, std::int32_t* top_ids, float* top_logprobs, int max_logprobs,
            cudaStream_t s);

// prompt_logprobs (vLLM): for each row with targets[row] in [0, vocab), the target's log-softmax logprob, its rank
// (1 + tokens with a logprob >= its own, ties counted against it) and the num_top best tokens (value desc, id asc)
// into top_ids / top_logprobs [rows, max_top] (unused slots: id -1). Rows with a negative target are skipped.
void position_logprobs(const float* logits, int rows, int vocab, const std::int32_t* targets, int num_top, int max_top,
                       float* logprob, std::int32_t* rank, std::int32_t* top_ids, float* top_logprobs, cudaStream_t s);

}  // namespace troupe::kernels
