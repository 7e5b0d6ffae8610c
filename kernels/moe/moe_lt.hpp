#pragma once
// The prefill path of the routed experts: per-expert cuBLASLt GEMMs (kernels::Gemm) instead of the grouped
// mma.sync kernels of moe_experts. The (token, choice) entries are grouped by expert on the device, the per-expert
// row counts come back to the host (one stream sync per call: prefill steps only, never inside a CUDA graph), the
// rows are gathered expert-contiguous (and quantized 1x128 to FP8 for FP8 experts), then per used expert one GEMM
// for gate|up and one for down, SiLU*up over all rows in between, and a weighted sum back into `out`.
//
//   entries (t, k)  --group-->  rows [off_e, off_e + cnt_e) of expert e, padded with empty rows to off_{e+1}
//   x[t] --gather/quant--> A rows --GEMM w13_e--> gate|up --silu*up (quant)--> h --GEMM w2_e--> y
//   out[t] += sum_k w[t, k] * y[row of (t, k)]          (one pass per token: no atomics, fixed order)
#include "kernels/moe/moe.hpp"

namespace troupe::kernels {

class Gemm;

// Bytes moe_experts_lt needs for batches of up to max_tokens (0 when the weights' shapes exclude the path or
// TROUPE_MOE_LT=0). moe_workspace_bytes includes them when moe_lt_pays(max_tokens, ...), i.e. when
// moe_experts_auto can take the path; a direct moe_experts_lt call needs them in any case.
std::size_t moe_lt_workspace_bytes(int max_tokens, int top_k, const MoeWeights& w);

// Whether batches of n tokens are faster here than on moe_experts' grouped kernels: the shapes fit (FP8: hidden
// and inter multiples of 128) and lt_pays (moe_lt_plan.hpp: the measured crossovers in rows per used expert and,
// FP8, expert size) holds for every expert used. Monotone in n.
bool moe_lt_pays(int n, int top_k, const MoeWeights& w);
// moe_lt_pays and the stream is not capturing a CUDA graph: moe_experts_auto's choice.
bool moe_lt_takes(int n, int top_k, const MoeWeights& w, cudaStream_t s);

// Whether the FP8 experts' GEMMs (N a multiple of 256) run as one grouped wgmma launch (moe_wgmma.cuh) instead of
// one cuBLASLt call per expert: mode 1 always, 0 never, -1 by rows per used expert (lt_wgmma_pays, the default;
// TROUPE_MOE_LT_WGMMA=0 / 1 force it). Returns the previous mode.
int moe_lt_use_wgmma(int mode);

// moe_experts' contract (accumulates into out), through cuBLASLt. Syncs the stream once per 4096-token chunk.
// workspace: moe_lt_workspace_bytes(n, top_k, w) at least.
void moe_experts_lt(Gemm& gemm, const __nv_bfloat16* x, int n, const std::int32_t* topk_ids, const float* topk_weights,
                    int top_k, const MoeWeights& w, void* workspace, float* out, cudaStream_t s);

// moe_experts_lt when moe_lt_takes (a bf16 chunk whose routing turns out too skewed for the batched GEMMs and
// too small for per-expert ones goes to moe_experts after all), else moe_experts. workspace:
// moe_workspace_bytes(max_tokens, top_k, w) with n <= max_tokens. always_on: moe_experts'.
void moe_experts_auto(Gemm& gemm, const __nv_bfloat16* x, int n, const std::int32_t* topk_ids,
                      const float* topk_weights, int top_k, const MoeWeights& w, void* workspace, float* out,
                      cudaStream_t s, int always_on = 0);

}  // namespace troupe::kernels
