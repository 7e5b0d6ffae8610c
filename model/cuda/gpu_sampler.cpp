#include "model/cuda/gpu_sampler.hpp"

#include "model/cuda/glue.hpp"

#include <algorithm>

namespace troupe::cuda {
namespace {
constexpr int kMaxMasked = 64;  // EOS + stop ids masked per row for min_tokens

bool has_penalties(const SamplingOptions& o) {
  return o.presence_penalty != 0.0f || o.frequency_penalty != 0.0f || o.repetition_penalty != 1.0f;
}
}  // namespace

GpuSampler::GpuSampler(int max_rows, int vocab, cudaStream_t s)
    : max_rows_(max_rows),
      vocab_(vocab),
      s_(s),
      params_(std::size_t(max_rows) * sizeof(kernels::SampleParams)),
      tokens_(std::size_t(max_rows) * 4),
      logprob_(std::size_t(max_rows) * 4),
      top_ids_(std::size_t(max_rows) * kMaxLogprobs * 4),
      top_lp_(std::size_t(max_rows) * kMaxLogprobs * 4),
      workspace_(kernels::sample_workspace_bytes(max_rows, vocab)),
      masks_(std::size_t(max_rows) * kMaxMasked * 2 * 4),
      h_params_(std::size_t(max_rows) * sizeof(kernels::SampleParams)),
      h_tokens_(std::size_t(max_rows) * 4),
      h_logprob_(std::size_t(max_rows) * 4),
      h_top_ids_(std::size_t(max_rows) * kMaxLogprobs * 4),
      h_top_lp_(std::size_t(max_rows) * kMaxLogprobs * 4),
      h_masks_(std::size_t(max_rows) * kMaxMasked * 2 * 4) {}

// Penalty rows one at a time (they are few): counts of output tokens and the prompt mask, as vLLM keeps them.
void GpuSampler::apply_row_penalties(float* logits, std::span<const SampleRow> rows) {
  std::vector<int> which;
  for (std::size_t r = 0; r < rows.size(); ++r)
    if (has_penalties(*rows[r].options)) which.push_back(int(r));
  if (which.empty()) return;
  const std::size_t V = std::size_t(vocab_), n = which.size();
  if (counts_.bytes() < n * V * 2) {
    counts_ = DeviceBuffer(n * V * 2);
    prompt_mask_ = DeviceBuffer(n * V);
  }
  h_counts_.assign(n * V, 0);
  h_prompt_mask_.assign(n * V, 0);
  for (std::size_t i = 0; i < n; ++i) {
    const SampleRow& row = rows[std::size_t(which[i])];
    for (auto t : row.output) h_counts_[i * V + std::size_t(t)] += 1;
    for (auto t : row.prompt) h_prompt_mask_[i * V + std::size_t(t)] = 1;
  }
  TROUPE_CUDA_CHECK(cudaMemcpyAsync(counts_.get(), h_counts_.data(), n * V * 2, cudaMemcpyHostToDevice, s_));
  TROUPE_CUDA_CHECK(cudaMemcpyAsync(prompt_mask_.get(), h_prompt_mask_.data(), n * V, cudaMemcpyHostToDevice, s_));
  for (std::size_t i = 0; i < n; ++i)
    kernels::apply_penalties(logits + std::size_t(which[i]) * V, 1,
                             vocab_, params_.get<kernels::SampleParams>() + which[i],
                             counts_.get<std::uint16_t>() + i * V, prompt_mask_.get<std::uint8_t>() + i * V, s_);
  // h_counts_ / h_prompt_mask_ are pageable: the copies above finished before cudaMemcpyAsync returned.
}

std::vector<SampleResult> GpuSampler::sample(float* logits, std::span<const SampleRow> rows) {
  const int n = int(rows.size());
  if (n > max_rows_) throw std::invalid_argument("sampler: more rows than max-num-seqs");
  auto* hp = h_params_.get<kernels::SampleParams>();
  auto* hm = h_masks_.get<std::int32_t>();
  int masked = 0, want_lp = 0;
  for (int r = 0; r < n; ++r) {
    const SamplingOptions& o = *rows[std::size_t(r)].options;
    kernels::SampleParams p;
    p.temperature = o.temperature < 1e-5f ? 0.0f : o.temperature;
    p.top_p = o.top_p;
    p.min_p = o.min_p;
    p.top_k = o.top_k > 0 ? o.top_k : -1;
    p.seed = rows[std::size_t(r)].seed;
    p.step = rows[std::size_t(r)].prompt.size() + rows[std::size_t(r)].output.size();
    p.presence_penalty = o.presence_penalty;
    p.frequency_penalty = o.frequency_penalty;
    p.repetition_penalty = o.repetition_penalty;
    p.num_logprobs = o.logprobs < 0 ? -1 : std::min(o.logprobs, kMaxLogprobs);
    want_lp |= o.logprobs >= 0;
    hp[r] = p;
    if (rows[std::size_t(r)].output.size() < o.min_tokens) {  // EOS and stop ids cannot end it yet
      auto mask = [&](std::int32_t id) {
        if (id >= 0 && id < vocab_ && masked < max_rows_ * kMaxMasked) {
          hm[2 * masked] = r;
          hm[2 * masked + 1] = id;
          ++masked;
        }
      };
      if (!o.ignore_eos) mask(o.eos_token_id);
      for (auto id : o.stop_token_ids) mask(id);
    }
  }
  TROUPE_CUDA_CHECK(cudaMemcpyAsync(params_.get(), hp, std::size_t(n) * sizeof(kernels::SampleParams),
                                    cudaMemcpyHostToDevice, s_));
  if (masked) {
    TROUPE_CUDA_CHECK(cudaMemcpyAsync(masks_.get(), hm, std::size_t(masked) * 8, cudaMemcpyHostToDevice, s_));
    mask_logits(logits, vocab_, masks_.get<std::int32_t>(), masked, s_);
  }
  apply_row_penalties(logits, rows);
  kernels::sample(logits, n, vocab_, params_.get<kernels::SampleParams>(), workspace_.get(), tokens_.get<std::int32_t>(),
                  want_lp ? logprob_.get<float>() : nullptr, want_lp ? top_ids_.get<std::int32_t>() : nullptr,
                  want_lp ? top_lp_.get<float>() : nullptr, want_lp ? kMaxLogprobs : 0, s_);
  TROUPE_CUDA_CHECK(cudaMemcpyAsync(h_tokens_.get(), tokens_.get(), std::size_t(n) * 4, cudaMemcpyDeviceToHost, s_));
  if (want_lp) {
    TROUPE_CUDA_CHECK(cudaMemcpyAsync(h_logprob_.get(), logprob_.get(), std::size_t(n) * 4, cudaMemcpyDeviceToHost, s_));
    TROUPE_CUDA_CHECK(cudaMemcpyAsync(h_top_ids_.get(), top_ids_.get(), std::size_t(n) * kMaxLogprobs * 4,
                                      cudaMemcpyDeviceToHost, s_));
    TROUPE_CUDA_CHECK(cudaMemcpyAsync(h_top_lp_.get(), top_lp_.get(), std::size_t(n) * kMaxLogprobs * 4,
                                      cudaMemcpyDeviceToHost, s_));
  }
  TROUPE_CUDA_CHECK(cudaStreamSynchronize(s_));
  std::vector<SampleResult> out(static_cast<std::size_t>(n));
  for (int r = 0; r < n; ++r) {
    out[std::size_t(r)].token = h_tokens_.get<std::int32_t>()[r];
    const int k = hp[r].num_logprobs;
    if (k < 0) continue;
    out[std::size_t(r)].logprob = h_logprob_.get<float>()[r];
    for (int j = 0; j < k; ++j) {
      const std::int32_t id = h_top_ids_.get<std::int32_t>()[r * kMaxLogprobs + j];
      if (id >= 0) out[std::size_t(r)].top.push_back({id, h_top_lp_.get<float>()[r * kMaxLogprobs + j]});
    }
  }
  return out;
}

GpuPromptLogprobs::GpuPromptLogprobs(int max_tokens, int vocab, cudaStream_t s)
    : max_tokens_(max_tokens),
      vocab_(vocab),
      s_(s),
      targets_(std::size_t(max_tokens) * 4),
      logprob_(std::size_t(max_tokens) * 4),
      rank_(std::size_t(max_tokens) * 4),
      top_ids_(std::size_t(max_tokens) * kMaxTop * 4),
      top_lp_(std::size_t(max_tokens) * kMaxTop * 4),
      h_targets_(std::size_t(max_tokens) * 4),
      h_logprob_(std::size_t(max_tokens) * 4),
      h_rank_(std::size_t(max_tokens) * 4),
      h_top_ids_(std::size_t(max_tokens) * kMaxTop * 4),
      h_top_lp_(std::size_t(max_tokens) * kMaxTop * 4) {}

void GpuPromptLogprobs::begin(std::span<const std::int32_t> targets) {
  if (targets.size() > std::size_t(max_tokens_)) throw std::invalid_argument("prompt logprobs: more rows than tokens");
  std::copy(targets.begin(), targets.end(), h_targets_.get<std::int32_t>());
  TROUPE_CUDA_CHECK(cudaMemcpyAsync(targets_.get(), h_targets_.get(), targets.size() * 4, cudaMemcpyHostToDevice, s_));
}

void GpuPromptLogprobs::add(const float* logits, int first, int rows, int num_top) {
  if (first < 0 || rows < 0 || first + rows > max_tokens_) throw std::invalid_argument("prompt logprobs: bad rows");
  const std::size_t f = std::size_t(first);
  kernels::position_logprobs(logits, rows, vocab_, targets_.get<std::int32_t>() + f, std::clamp(num_top, 0, kMaxTop),
                             kMaxTop, logprob_.get<float>() + f, rank_.get<std::int32_t>() + f,
                             top_ids_.get<std::int32_t>() + f * kMaxTop, top_lp_.get<float>() + f * kMaxTop, s_);
}

void GpuPromptLogprobs::finish(int rows) {
  const std::size_t n = std::size_t(std::clamp(rows, 0, max_tokens_));
  TROUPE_CUDA_CHECK(cudaMemcpyAsync(h_logprob_.get(), logprob_.get(), n * 4, cudaMemcpyDeviceToHost, s_));
  TROUPE_CUDA_CHECK(cudaMemcpyAsync(h_rank_.get(), rank_.get(), n * 4, cudaMemcpyDeviceToHost, s_));
  TROUPE_CUDA_CHECK(cudaMemcpyAsync(h_top_ids_.get(), top_ids_.get(), n * kMaxTop * 4, cudaMemcpyDeviceToHost, s_));
  TROUPE_CUDA_CHECK(cudaMemcpyAsync(h_top_lp_.get(), top_lp_.get(), n * kMaxTop * 4, cudaMemcpyDeviceToHost, s_));
  TROUPE_CUDA_CHECK(cudaStreamSynchronize(s_));
}

PositionLogprob GpuPromptLogprobs::result(int t, int num_top) const {
  PositionLogprob r;
  r.logprob = h_logprob_.get<float>()[t];
  r.rank = std::uint32_t(h_rank_.get<std::int32_t>()[t]);
  const std::size_t at = std::size_t(t) * kMaxTop;
  for (int j = 0; j < std::clamp(num_top, 0, kMaxTop); ++j) {
    const std::int32_t id = h_top_ids_.get<std::int32_t>()[at + std::size_t(j)];
    if (id >= 0) r.top.push_back({id, h_top_lp_.get<float>()[at + std::size_t(j)]});
  }
  return r;
}

}  // namespace troupe::cuda

