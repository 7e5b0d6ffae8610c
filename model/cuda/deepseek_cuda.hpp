#pragma once
// DeepSeek-V2 / V3 (R1) on the GPU, following the cpu oracle (model/cpu/deepseek.cpp, mla.cpp, moe.cpp):
//
//   per layer:  h = add_rmsnorm(residual)
//     q   = q_b(rmsnorm(q_a(h)))  (V3)  |  q_proj(h)  (V2-Lite)          [T, heads, nope | rope]
//     kv  = kv_a_proj_with_mqa(h) -> [rmsnorm(latent) | rope(k_pe)]      -> mla_cache_write
//     absorbed attention:  q_lat = q_nope x W_UK[h]   (per head, batched GEMM)   [T, heads, latent | rope]
//                          o_lat = mla_attention_absorbed(q_lat, cache)           [T, heads, latent]
//                          attn  = o_lat x W_UV[h]^T                               [T, heads, v]
//     residual += o_proj(attn);  h = add_rmsnorm(residual)
//     dense MLP (first_k_dense_replace layers) | MoE: router GEMM (float32 out) -> moe_route ->
//     moe_experts (accumulates into the float32 residual) + shared experts (dense SwiGLU)
//
// FP8 checkpoints keep FP8 linears (activations quantized per 1x128, Gemm::fp8_block) where the input
// width is a multiple of 128; kv_b_proj is dequantized to bf16 for the per-head absorption GEMMs.
#include "kernels/moe/moe.hpp"
#include "model/cuda/cuda_model.hpp"

namespace troupe::cuda {

class DeepseekCudaModel final : public CudaModel {
 public:
  DeepseekCudaModel(const CudaModelOptions& opt, const ModelConfig& cfg);
  ~DeepseekCudaModel() override;

 private:
  struct Mlp {
    Linear gate_up, down;  // gate | up stacked by rows
    int inter = 0;
  };
  struct Layer {
    const bf16 *input_norm = nullptr, *post_norm = nullptr, *q_a_norm = nullptr, *kv_a_norm = nullptr;
    Linear q_a, q_b, q, kv_a, o;
    const bf16* kv_b = nullptr;  // [heads * (nope + v), latent] bf16: W_UK and W_UV of every head
    bool moe = false;
    Mlp dense, shared;
    const bf16* router = nullptr;        // [experts, hidden]
    const float* router_bias = nullptr;  // e_score_correction_bias (V3)
    const float* router_f32 = nullptr;   // exact_router only
    kernels::MoeWeights experts;
  };
  void load(WeightLoader& w);
  Layer load_layer(WeightLoader& w, std::uint32_t l);
  Mlp load_mlp(WeightLoader& w, const std::string& p, int inter);
  kernels::MoeWeights load_experts(WeightLoader& w, const std::string& p);
  void plan_activations(ArenaPlan& plan) override;
  void take_activations(Arena& arena) override;
  template <class A>
  void layout(A& a);
  void alloc_kv(std::uint32_t num_blocks) override;
  const bf16* run_layers(const kernels::AttnBatch& b, const std::int32_t* tokens) override;
  void attention(const Layer& L, std::uint32_t l, const kernels::AttnBatch& b);
  const bf16* feed_forward(const Layer& L, int T);
  void route(const Layer& L, int T);
  void track_fp8(const Linear& l) {
    if (l.is_fp8()) max_k_ = std::max(max_k_, l.k), max_fp8_n_ = std::max(max_fp8_n_, l.n);
  }
  std::int64_t graph_plan_key(int tokens, int context) const override;

  int heads_, q_lora_, kvr_, nope_, rope_, v_, qk_, row_;  // row_: latent + rope, the cache row width
  int max_inter_ = 0;
  float scale_ = 1.0f;
  int sm_count_ = 1;  // the MLA split plan's, for graph_plan_key
  bool interleave_ = true;
  kernels::MoeRouting routing_;
  std::vector<Layer> layers_;
  DeviceBuffer cache_;  // [layers][num_blocks, block_size, row]
  std::size_t layer_cache_elems_ = 0;
  bf16 *h_ = nullptr, *qa_ = nullptr, *qa_n_ = nullptr, *q_ = nullptr, *kv_ = nullptr, *latent_ = nullptr;
  bf16 *qfull_ = nullptr, *olat_ = nullptr, *attn_ = nullptr, *gate_up_ = nullptr, *act_ = nullptr,
       *addend_ = nullptr;
  float *router_logits_ = nullptr, *topk_w_ = nullptr;
  std::int32_t* topk_ids_ = nullptr;
  void *mla_ws_ = nullptr, *moe_ws_ = nullptr;
  std::size_t mla_ws_bytes_ = 0, moe_ws_bytes_ = 0;
};

}  // namespace troupe::cuda
