#pragma once
// The cpu reference backend: a CpuModel (Llama/Qwen2, DeepSeek) over a paged KV cache indexed by the
// scheduler's block ids, sampling on the host. Every rank of a tensor-parallel group computes the whole
// model (there is no collective on the cpu), so ranks agree and only rank 0's tokens are reported.
#include "actors/gpu_worker/backend.hpp"
#include "model/cpu/cpu_model.hpp"

namespace troupe {

// The embedded default model when `model` is empty (models/stories260K of the source tree).
std::string default_model_dir();

class CpuBackend final : public Backend {
 public:
  BackendInfo init(schema::WorkerInit::Reader init) override;
  std::unordered_map<std::uint64_t, std::int32_t> execute(const std::vector<WorkerRequest*>& batch) override;

 private:
  std::unique_ptr<cpu::CpuModel> model_;
  std::uint64_t seed_ = 0;
};

}  // namespace troupe
