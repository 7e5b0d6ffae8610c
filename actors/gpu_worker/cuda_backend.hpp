#pragma once
// The cuda backend: the GPU model (model/cuda: Llama / Qwen2, DeepSeek-V2/V3) over a paged KV cache in
// device memory, sampling on the GPU. Each step packs the scheduled chunks into one host buffer (one H2D
// copy), runs the forward on the worker's stream, samples the requests whose prompt is complete, and
// copies back only their tokens (and logprobs when asked).
#include "actors/gpu_worker/backend.hpp"

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace troupe {
namespace cuda {
class CudaModel;
class GpuSampler;
class GpuPromptLogprobs;
struct StepChunk;
struct DeviceLogits;
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
  // prompt_logprobs: every row of the requests that gather them goes through prompt_lps_ on the GPU while the
  // model computes the step (forward's slices); the numbers land in WorkerRequest::prompt_lps.
  cuda::DeviceLogits gather_prompt_logprobs(std::span<const cuda::StepChunk> chunks, const std::vector<WorkerRequest*>& active,
                                            const std::vector<std::uint8_t>& all_rows);
  std::unique_ptr<cuda::GpuPromptLogprobs> prompt_lps_;
  std::uint64_t seed_ = 0;
};

}  // namespace troupe
