#include "actors/gpu_worker/cuda_backend.hpp"

#include "actors/gpu_worker/cpu_backend.hpp"
#include "model/cuda/cuda_model.hpp"
#include "model/cuda/gpu_sampler.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace troupe {

CudaBackend::CudaBackend() = default;
CudaBackend::~CudaBackend() = default;

BackendInfo CudaBackend::init(schema::WorkerInit::Reader init) {
  cuda::CudaModelOptions o;
  o.model_dir = init.getModel().size() ? std::string(init.getModel().cStr()) : default_model_dir();
  o.dummy_weights = std::string(init.getLoadFormat().cStr()) == "dummy";
  o.seed = init.getSeed();
  o.block_size = init.getBlockSize();
  o.gpu_memory_utilization = init.getGpuMemoryUtilization();
  o.max_num_batched_tokens = init.getMaxNumBatchedTokens();
  o.max_num_seqs = init.getMaxNumSeqs();
  o.max_model_len = init.getMaxModelLen();
  o.num_blocks_override = init.getNumGpuBlocksOverride();
  o.enforce_eager = init.getEnforceEager();
  // The coordinator's figure (every sequence at full length) caps the pool: more blocks could never be used
  // at once, and a small model would otherwise hand the block manager millions of blocks.
  o.num_blocks_cap = init.getNumBlocks();
  o.rank = init.getRank();
  o.world = init.getWorldSize();
  int devices = 0;
  if (cudaGetDeviceCount(&devices) == cudaSuccess && devices > 0) o.device = int(o.rank % std::uint32_t(devices));
  seed_ = init.getSeed();
  model_ = cuda::load_cuda_model(o);
  sampler_ = std::make_unique<cuda::GpuSampler>(int(std::min(o.max_num_seqs, o.max_num_batched_tokens)),
                                                int(model_->config().vocab_size), model_->stream());
  prompt_lps_ = std::make_unique<cuda::GpuPromptLogprobs>(int(o.max_num_batched_tokens),
                                                           int(model_->config().vocab_size), model_->stream());
  spdlog::info("cuda backend (rank {}): {} from {} on {}, {} KV blocks", o.rank, model_->config().architecture,
               o.model_dir, model_->device_name(), model_->num_blocks());
  return {"cuda:" + std::to_string(o.device) + " " + model_->device_name(), model_->num_blocks()};
}

// Rows of a request that gathers prompt_logprobs, as the cpu backend lays them out: the row at position p scores
// prompt token p + 1; the prompt's last row scores none (it samples). targets[t] per step row t (-1: none).
cuda::DeviceLogits CudaBackend::gather_prompt_logprobs(std::span<const cuda::StepChunk> chunks,
                                                       const std::vector<WorkerRequest*>& active,
                                                       const std::vector<std::uint8_t>& all_rows) {
  std::vector<std::int32_t> targets, first_row;
  for (std::size_t i = 0; i < active.size(); ++i) {
    const WorkerRequest& r = *active[i];
    first_row.push_back(std::int32_t(targets.size()));
    for (std::uint32_t k = 0; k < r.num_scheduled; ++k) {
      const std::size_t target = std::size_t(r.num_computed) + k + 1;
      targets.push_back(all_rows[i] && target < r.num_prompt ? r.tokens[target] : -1);
    }
  }
  prompt_lps_->begin(targets);
  auto on_slice = [&](int first, int rows, const float* logits) {
    const auto i = std::size_t(std::upper_bound(first_row.begin(), first_row.end(), first) - first_row.begin()) - 1;
    prompt_lps_->add(logits, first, rows, active[i]->sampling.prompt_logprobs);
  };
  const cuda::DeviceLogits logits = model_->forward(chunks, all_rows, on_slice);
  prompt_lps_->finish(int(targets.size()));
  for (std::size_t i = 0; i < active.size(); ++i) {
    WorkerRequest& r = *active[i];
    for (std::uint32_t k = 0; all_rows[i] && k < r.num_scheduled; ++k) {
      const std::size_t target = std::size_t(r.num_computed) + k + 1;
      if (target < r.num_prompt && r.prompt_lps.size() + 1 == target)
        r.prompt_lps.push_back(prompt_lps_->result(first_row[i] + std::int32_t(k), r.sampling.prompt_logprobs));
    }
  }
  return logits;
}

SampledTokens CudaBackend::execute(const std::vector<WorkerRequest*>& batch) {
  std::vector<cuda::StepChunk> chunks;
  std::vector<WorkerRequest*> sampling, active;
  std::vector<std::uint8_t> all_rows;
  bool gathering = false;
  for (auto* r : batch) {
    if (r->num_scheduled == 0) continue;
    std::span<const std::int32_t> toks(r->tokens);
    chunks.push_back({toks.subspan(r->num_computed, r->num_scheduled), r->num_computed, r->blocks, r->sample_now()});
    active.push_back(r);
    all_rows.push_back(r->gathers_prompt_logprobs());
    gathering |= r->gathers_prompt_logprobs();
    if (r->sample_now()) sampling.push_back(r);
  }
  SampledTokens out;
  if (chunks.empty()) return out;
  const cuda::DeviceLogits logits =
      gathering ? gather_prompt_logprobs(chunks, active, all_rows) : model_->forward(chunks);
  if (sampling.empty()) {
    TROUPE_CUDA_CHECK(cudaStreamSynchronize(model_->stream()));  // surface errors of this step here
    return out;
  }
  std::vector<cuda::SampleRow> rows;
  for (auto* r : sampling) {
    std::span<const std::int32_t> all(r->tokens);
    const std::size_t np = std::min<std::size_t>(r->num_prompt, all.size());
    // Unseeded requests draw from the worker's seed and their id: reproducible runs, distinct requests.
    const std::uint64_t seed = r->has_seed ? r->sampling_seed : seed_ ^ (r->id * 0x9e3779b97f4a7c15ull);
    rows.push_back({&r->sampling, all.first(np), all.subspan(np), seed});
  }
  auto results = sampler_->sample(logits.data, rows);
  for (std::size_t i = 0; i < sampling.size(); ++i) {
    WorkerRequest& r = *sampling[i];
    out[r.id] = std::move(results[i]);
    if (!r.gathers_prompt_logprobs()) continue;
    if (r.prompt_lps.size() + 1 != r.num_prompt)
      spdlog::warn("request {}: prompt logprobs cover {} of {} prompt tokens (part of the prompt was cached)", r.id,
                   r.prompt_lps.size() + 1, r.num_prompt);
    out[r.id].prompt_logprobs = std::move(r.prompt_lps);
    r.prompt_lps.clear();
  }
  return out;
}

}  // namespace troupe
