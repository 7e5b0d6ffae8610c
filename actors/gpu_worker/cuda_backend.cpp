#include "actors/gpu_worker/cuda_backend.hpp"

#include "actors/gpu_worker/cpu_backend.hpp"
#include "model/cuda/cuda_model.hpp"
#include "model/cuda/gpu_sampler.hpp"

#include <spdlog/spdlog.h>

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
  spdlog::info("cuda backend (rank {}): {} from {} on {}, {} KV blocks", o.rank, model_->config().architecture,
               o.model_dir, model_->device_name(), model_->num_blocks());
  return {"cuda:" + std::to_string(o.device) + " " + model_->device_name(), model_->num_blocks()};
}

SampledTokens CudaBackend::execute(const std::vector<WorkerRequest*>& batch) {
  std::vector<cuda::StepChunk> chunks;
  std::vector<WorkerRequest*> sampling;
  for (auto* r : batch) {
    if (r->num_scheduled == 0) continue;
    std::span<const std::int32_t> toks(r->tokens);
    chunks.push_back({toks.subspan(r->num_computed, r->num_scheduled), r->num_computed, r->blocks, r->sample_now()});
    if (r->sample_now()) sampling.push_back(r);
    if (r->gathers_prompt_logprobs() && !warned_prompt_logprobs_) {
      warned_prompt_logprobs_ = true;
      spdlog::warn("cuda backend: prompt_logprobs are not computed on the GPU yet; requests get none");
    }
  }
  SampledTokens out;
  if (chunks.empty()) return out;
  const cuda::DeviceLogits logits = model_->forward(chunks);
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
  for (std::size_t i = 0; i < sampling.size(); ++i) out[sampling[i]->id] = std::move(results[i]);
  return out;
}

}  // namespace troupe
