#pragma once
// Llama / Qwen2 on the GPU: per layer add_rmsnorm, fused q|k|v GEMM (+ Qwen2 biases), rotate-half RoPE,
// cache_write_kv, paged GQA attention, o GEMM into the float32 residual, add_rmsnorm, fused gate|up
// GEMM, SwiGLU, down GEMM into the residual. Weights bf16 (a float32 checkpoint such as stories260K is
// rounded to bf16 on upload).
#include "model/cuda/cuda_model.hpp"

namespace troupe::cuda {

class LlamaCudaModel final : public CudaModel {
 public:
  // Throws CheckpointError for missing or misshapen tensors; std::runtime_error for tensor-parallel-size
  // > 1 (the cross-GPU all-reduce is not part of this backend yet).
  LlamaCudaModel(const CudaModelOptions& opt, const ModelConfig& cfg);
  ~LlamaCudaModel() override;

 private:
  struct Layer {
    const bf16* attn_norm = nullptr;
    const bf16* mlp_norm = nullptr;
    const bf16* qkv_bias = nullptr;  // Qwen2 only
    Linear qkv, o, gate_up, down;
  };
  void load(WeightLoader& w);
  void plan_activations(ArenaPlan& plan) override;
  void take_activations(Arena& arena) override;
  void alloc_kv(std::uint32_t num_blocks) override;
  const bf16* run_layers(const kernels::AttnBatch& b, const std::int32_t* tokens) override;
  template <class A>
  void layout(A& a);

  int hd_, heads_, kv_heads_, ff_, q_dim_, kv_dim_, qkv_dim_;
  std::vector<Layer> layers_;
  DeviceBuffer kv_;                 // [layers][k | v][num_blocks, block_size, kv_heads, head_dim]
  std::size_t layer_kv_elems_ = 0;  // elements of one layer's K (or V) cache
  bf16 *h_ = nullptr, *qkv_ = nullptr, *attn_ = nullptr, *gate_up_ = nullptr, *act_ = nullptr, *addend_ = nullptr;
};

}  // namespace troupe::cuda
