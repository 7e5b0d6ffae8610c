#pragma once
// Sampling on the GPU for the cuda backend: one logits row per request that samples this step, each with
// its own parameters and seed (kernels/sampling). Penalties need the request's token history on the
// device: rows that use them get a [vocab] count row and prompt mask uploaded for the step; min_tokens
// masks EOS and stop ids. Only the sampled tokens (and logprobs when a row asks) come back to the host.
#include "kernels/sampling/sampling.hpp"
#include "model/cuda/cuda_util.hpp"
#include "model/sampling/sampling.hpp"

#include <cstdint>
#include <span>
#include <vector>

namespace troupe::cuda {

struct SampleRow {
  const SamplingOptions* options = nullptr;
  std::span<const std::int32_t> prompt, output;  // the request's tokens so far
  std::uint64_t seed = 0;                        // the request's seed, or one derived from the worker's
};

class GpuSampler {
 public:
  static constexpr int kMaxLogprobs = 20;  // vLLM's default max-logprobs
  GpuSampler(int max_rows, int vocab, cudaStream_t s);
  // logits: [rows.size(), vocab] float32 on the device (modified in place). Waits for the stream.
  // Logprobs are of the logits as the model gave them, except for rows with penalties or min_tokens
  // masking, whose logprobs see those adjustments.
  std::vector<SampleResult> sample(float* logits, std::span<const SampleRow> rows);

 private:
  void apply_row_penalties(float* logits, std::span<const SampleRow> rows);

  int max_rows_, vocab_;
  cudaStream_t s_;
  DeviceBuffer params_, tokens_, logprob_, top_ids_, top_lp_, workspace_, masks_;
  PinnedBuffer h_params_, h_tokens_, h_logprob_, h_top_ids_, h_top_lp_, h_masks_;
  DeviceBuffer counts_, prompt_mask_;  // grown on demand: [penalty rows, vocab]
  std::vector<std::uint16_t> h_counts_;
  std::vector<std::uint8_t> h_prompt_mask_;
};

// prompt_logprobs on the GPU: each prompt row's logprob and rank of the next prompt token and its top N, for
// rows handed over in slices as the model computes them (CudaModel::forward's slice callback). Rows are
// indexed by the step's token index; only the numbers come back to the host, in one copy at finish().
class GpuPromptLogprobs {
 public:
  static constexpr int kMaxTop = GpuSampler::kMaxLogprobs;
  GpuPromptLogprobs(int max_tokens, int vocab, cudaStream_t s);
  // targets[t]: the token step row t scores, or -1. Uploads them (asynchronously) for the step's slices.
  void begin(std::span<const std::int32_t> targets);
  // Rows [first, first + rows) of the step, logits [rows, vocab] valid until the stream moves on.
  void add(const float* logits, int first, int rows, int num_top);
  // Waits for the stream and copies the numbers of rows [0, rows) back.
  void finish(int rows);
  // Step row t's result (after finish; t must have had a target). num_top: as passed to add.
  PositionLogprob result(int t, int num_top) const;

 private:
  int max_tokens_, vocab_;
  cudaStream_t s_;
  DeviceBuffer targets_, logprob_, rank_, top_ids_, top_lp_;
  PinnedBuffer h_targets_, h_logprob_, h_rank_, h_top_ids_, h_top_lp_;
};

}  // namespace troupe::cuda

