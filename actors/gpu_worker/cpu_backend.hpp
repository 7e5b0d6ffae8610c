#pragma once
// The cpu reference backend: a CpuModel (Llama/Qwen2, DeepSeek) over a paged KV cache indexed by the
// scheduler's block ids, sampling on the host. With tensor-parallel-size > 1 every rank holds its shard
// (Llama/Qwen2 and DeepSeek: heads, MLP columns, DeepSeek's experts) and all-reduces through memory (so all
// ranks must be in one process). Ranks agree bitwise, and only rank 0's tokens are reported.
#include "actors/gpu_worker/backend.hpp"
#include "model/cpu/cpu_model.hpp"

namespace troupe {

// The embedded default model when `model` is empty (models/stories260K of the source tree).
std::string default_model_dir();

class CpuBackend final : public Backend {
 public:
  BackendInfo init(schema::WorkerInit::Reader init) override;
  SampledTokens execute(const std::vector<WorkerRequest*>& batch) override;

 private:
  std::unique_ptr<cpu::CpuModel> model_;
  std::uint64_t seed_ = 0;
};

}  // namespace troupe
