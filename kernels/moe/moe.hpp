#pragma once
// Mixture of experts: routing and the grouped expert GEMMs that read only the experts a batch uses.
#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace troupe::kernels {

// transformers' DeepSeek routers. V3/R1: sigmoid scores, top-k over scores + e_score_correction_bias within the
// best topk_group of n_group groups (a group's score: the sum of its top-2 biased scores), weights are the
// unbiased scores, normalised when norm_topk_prob, times routed_scaling_factor. V2 / V2-Lite: softmax scores,
// greedy top-k (topk_method "greedy": pass n_group = topk_group = 1) or group_limited_greedy (a group's score:
// its max), optional norm, scaling. group_by_top2_sum marks the V3 rules (-inf for dropped groups, scaling after
// normalising); without it the V2 rules apply (0 for dropped groups, scaling only when not normalising).
// Selection ties go to the lower expert id; each token's ids come out ascending (as model/cpu/moe.cpp returns).
struct MoeRouting {
  int num_experts = 0, top_k = 0, n_group = 1, topk_group = 1;
  bool sigmoid = true;              // V3 scoring_func "sigmoid"; false: "softmax"
  bool group_by_top2_sum = true;    // V3 (noaux_tc); false: V2's group max
  bool norm_topk_prob = true;
  float routed_scaling_factor = 1.0f;
  const float* correction_bias = nullptr;  // [num_experts] device, V3 only
  // Shared experts packed as always-on experts after the routed ones (ids num_experts .. + always_on - 1): each
  // token's row then holds its top_k routed choices followed by these ids with weight 1.0 (no scaling).
  int always_on = 0;
};
// logits [n, num_experts] float32 (the gate GEMM in float32) -> topk_ids / topk_weights [n, top_k + always_on].
void moe_route(const float* logits, int n, const MoeRouting& r, std::int32_t* topk_ids, float* topk_weights,
               cudaStream_t s);

// Every routed expert's weights stored contiguously (the backend packs them at load):
//   w13 [num_experts, 2 * inter, hidden]  rows [gate (inter) | up (inter)] of each expert
//   w2  [num_experts, hidden, inter]
// bf16, or FP8 e4m3 with 128x128 block scales w13_scale [E, 2*ceil(inter/128), ceil(hidden/128)], w2_scale
// [E, ceil(hidden/128), ceil(inter/128)] (the checkpoint's weight_scale_inv of each expert's gate/up/down, gate's
// blocks then up's: with inter % 128 != 0, as in the tiny checkpoints, up's first block is row ceil(inter/128)).
// hidden and inter must be multiples of 16.
struct MoeWeights {
  const void* w13 = nullptr;
  const void* w2 = nullptr;
  const float* w13_scale = nullptr;
  const float* w2_scale = nullptr;
  bool fp8 = false;
  int num_experts = 0, hidden = 0, inter = 0;
};

std::size_t moe_workspace_bytes(int max_tokens, int top_k, const MoeWeights& w);
// out[n, hidden] = sum_j topk_weights[t, j] * expert_{topk_ids[t, j]}(x[t]), expert(x) = W2 (silu(x W_gate^T) *
// (x W_up^T)). Tokens are grouped by expert on the device (no host sync, so it can be captured in a CUDA graph).
// out is float32 and is accumulated into (the residual stream or the shared-expert output) with float atomics, so
// the order of a token's top_k additions is not fixed. Ids outside [0, num_experts) are skipped. The
// intermediate silu(gate) * up is rounded to bf16 before the down GEMM. A single token takes two GEMV kernels
// instead of the tiled ones (moe_gemv.cuh; TROUPE_MOE_GEMV_TOKENS=0 keeps the tiles). always_on > 0 promises that
// each token's last always_on slots are experts num_experts - always_on + s (MoeRouting's packed shared experts):
// a single token's gate/up GEMV then runs them before its programmatic wait, beside the routing kernel.
void moe_experts(const __nv_bfloat16* x, int n, const std::int32_t* topk_ids, const float* topk_weights, int top_k,
                 const MoeWeights& w, void* workspace, float* out, cudaStream_t s, int always_on = 0);

// out[hidden] += x[k] W^T for one token and an FP8 weight W [hidden, k] with 128x128 block scales: the MoE down
// GEMV's flat kernel with W's k range cut into kFlatSlice-wide slices that it takes for experts of weight 1 (summed
// in slice order, no atomics). x is bf16 and is not quantized (f16x2 dots, as the MoE down GEMV). Returns false,
// launching nothing, for other shapes (k not a multiple of kFlatSlice, more than kFlatMaxSlices slices) or with
// TROUPE_FLAT_RESIDUAL=0 (A/B). The decode step's o_proj and dense down projection at batch 1.
constexpr int kFlatSlice = 2048, kFlatMaxSlices = 16;
bool gemv_fp8_flat_residual(const __nv_bfloat16* x, const __nv_fp8_e4m3* w, const float* w_scale, int hidden, int k,
                            float* out, cudaStream_t s);

// h[inter] = bf16(silu(x W_gate^T) * (x W_up^T)) for one token and an FP8 weight [gate | up] = [2 inter, hidden] with
// 128x128 scales stacked the same way (inter a multiple of 128): the MoE gate/up GEMV with that weight as its only
// expert (its flat kernel's f16x2 dots against x staged as f16 x 2^-8, no bf16 rounding of gate and up before the
// SiLU, as for the experts; float32 dots where the flat kernel does not take the shape). Returns false,
// launching nothing, for other shapes or with TROUPE_DENSE_GATE_UP_GEMV=0 (A/B: the GEMV, then silu_mul). The
// dense MLP layers' gate/up at batch 1.
bool gemv_fp8_gate_up_silu(const __nv_bfloat16* x, const __nv_fp8_e4m3* w, const float* w_scale, int inter,
                           int hidden, __nv_bfloat16* h, cudaStream_t s);

}  // namespace troupe::kernels
