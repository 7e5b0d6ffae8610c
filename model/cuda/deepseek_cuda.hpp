#pragma once
// DeepSeek-V2 / V3 (R1) on the GPU, following the cpu oracle (model/cpu/deepseek.cpp, mla.cpp, moe.cpp):
//
//   per layer:  h = add_rmsnorm(residual)
//     q   = q_b(rmsnorm(q_a(h)))  (V3)  |  q_proj(h)  (V2-Lite)          [T, heads, nope | rope]
//     kv  = kv_a_proj_with_mqa(h) -> [rmsnorm(latent) | rope(k_pe)]      -> mla_cache_write
//     absorbed attention:  q_lat = q_nope x W_UK[h]   (per head, batched GEMM)   [T, heads, latent | rope]
//                          o_lat = mla_attention_absorbed(q_lat, cache)           [T, heads, latent]
//                          attn  = o_lat x W_UV[h]^T                               [T, heads, v]
//     prefill chunks of >= 32 tokens instead expand K / V from the cached latents (kv_b_proj) and run
//     FlashAttention-style (model/cuda/mla_prefill.cpp, kernels/mla/mla_prefill.hpp)
//     residual += o_proj(attn);  h = add_rmsnorm(residual)
//     dense MLP (first_k_dense_replace layers) | MoE: router GEMM (float32 out) -> moe_route ->
//     moe_experts (accumulates into the float32 residual) + shared experts (dense SwiGLU)
//
// FP8 checkpoints keep FP8 linears (activations quantized per 1x128, Gemm::fp8_block) where the input
// width is a multiple of 128; kv_b_proj is dequantized to bf16 for the per-head absorption GEMMs.
#include "kernels/moe/moe.hpp"
#include "model/cuda/cuda_model.hpp"
#include "model/cuda/mla_prefill.hpp"

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
    Linear qkv_a;  // q_a | kv_a stacked by rows (stacked_linear.hpp): one GEMM over h; n == 0 when not fused
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
  kernels::MoeWeights load_experts(WeightLoader& w, const std::string& p, int extra = 0);
  int shared_as_experts(WeightLoader& w) const;
  void plan_activations(ArenaPlan& plan) override;
  void take_activations(Arena& arena) override;
  template <class A>
  void layout(A& a);
  void alloc_kv(std::uint32_t num_blocks) override;
  const bf16* run_layers(const kernels::AttnBatch& b, const std::int32_t* tokens) override;
  void attention(const Layer& L, std::uint32_t l, const kernels::AttnBatch& b);
  // Non-absorbed MLA for prefill chunks (model/cuda/mla_prefill.cpp).
  void init_prefill();
  void prepare_step(std::span<const StepChunk> chunks) override;
  void prefill_attention(const Layer& L, const bf16* cache, const kernels::AttnBatch& b);
  const bf16* feed_forward(const Layer& L, int T);
  void route(const Layer& L, int T, int always_on);
  const bf16* mlp(const Mlp& m, int T);
  void track_fp8(const Linear& l) {
    if (l.is_fp8()) max_k_ = std::max(max_k_, l.k), max_fp8_n_ = std::max(max_fp8_n_, l.n);
  }
  std::int64_t graph_plan_key(int tokens, int context) const override;

  int heads_, q_lora_, kvr_, nope_, rope_, v_, qk_, row_;  // row_: latent + rope, the cache row width
  int max_inter_ = 0;
  float scale_ = 1.0f;
  int sm_count_ = 1;  // the MLA split plan's, for graph_plan_key
  bool interleave_ = true;
  kernels::MoeRouting routing_;  // routing_.always_on: shared experts packed after the routed ones (0: separate)
  int merge_tokens_ = 0;          // batches of at most this many tokens run them inside moe_experts
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
  MlaPrefillStep prefill_;
  float* mla_lse_ = nullptr;  // [max_tokens, heads]: the prefill pieces' log-sum-exp
};

}  // namespace troupe::cuda
