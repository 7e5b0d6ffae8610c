#pragma once
// The cuda backend: the GPU model (model/cuda: Llama / Qwen2, DeepSeek-V2/V3) over a paged KV cache in
// device memory, sampling on the GPU. Each step packs the scheduled chunks into one host buffer (one H2D
// copy), runs the forward on the worker's stream, samples the requests whose prompt is complete, and
// copies back only their tokens (and logprobs when asked).
#include "actors/gpu_worker/backend.hpp"

#include <memory>

namespace troupe {
namespace cuda {
class CudaModel;
class GpuSampler;
}  // namespace cuda

class CudaBackend final : public Backend {
 public:
  CudaBackend();
  ~CudaBackend() override;
  BackendInfo init(schema::WorkerInit::Reader init) override;
  SampledTokens execute(const std::vector<WorkerRequest*>& batch) override;

 private:
  std::unique_ptr<cuda::CudaModel> model_;
  std::unique_ptr<cuda::GpuSampler> sampler_;
  std::uint64_t seed_ = 0;
  bool warned_prompt_logprobs_ = false;
};

}  // namespace troupe
