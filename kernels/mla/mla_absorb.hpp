#pragma once
// The absorbed MLA's per-head projections at decode sizes, as GEMVs fused with their neighbours (the batched
// cuBLASLt GEMMs they replace took ~8 us each at one token, plus a launch each for q_pe and the split merge):
//
//   mla_absorb_q:  qfull[t, h, 0:latent) = q[t, h, 0:nope) W_UK[h]    W_UK[h] = kv_b rows h (nope + v) + [0, nope)
//                  qfull[t, h, latent:)  = rope(q[t, h, nope:nope+rope))  (what mla_q_pe writes)
//   the W_UV side: mla.hpp's mla_attention_absorbed with an MlaUvOut merges the splits and applies
//                  W_UV[h] = kv_b rows h (nope + v) + nope + [0, v) in one kernel.
//
// Only for the widths of the fast attention path (latent 512, rope 64) and batches of at most kMlaAbsorbMaxTokens tokens
// (mla_absorb_fits); the backend keeps the GEMMs otherwise. TROUPE_MLA_ABSORB=0 turns both off (A/B).
//
//   mla_qb_absorb: q_b's projection and mla_absorb_q together, for one token (below).
#include "kernels/mla/mla_plan.hpp"  // absorb_shape_ok

#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace troupe::kernels {

constexpr int kMlaAbsorbMaxTokens = mla_detail::kAbsorbMaxTokens;

// mla_detail::absorb_shape_ok, unless TROUPE_MLA_ABSORB=0.
bool mla_absorb_fits(int num_tokens, int latent_dim, int rope_dim, int nope, int v_dim);

// q [n, heads, nope | rope]; kv_b [heads * (nope + v), latent]; qfull [n, heads, latent | rope].
void mla_absorb_q(const __nv_bfloat16* q, int n, int heads, int nope, int rope_dim, int v_dim,
                  const __nv_bfloat16* kv_b, int latent_dim, const std::int32_t* positions, const float* cos_sin,
                  bool interleaved, __nv_bfloat16* qfull, cudaStream_t s);

// One decode token on R1 / V3 shapes (q_lora 1536, nope 128, rope 64, latent 512, FP8 q_b with 128x128 scales):
// q = x W_qb^T and mla_absorb_q in one kernel (mla_qb_absorb.cu says why), x = q_a_layernorm's output [q_lora],
// qfull [heads, latent | rope]. TROUPE_MLA_QB_ABSORB=0: the two kernels again (A/B).
bool mla_qb_absorb_fits(int num_tokens, int q_lora, int head_q_rows, int nope, int rope_dim, int latent_dim);
void mla_qb_absorb(const __nv_bfloat16* x, const __nv_fp8_e4m3* wq, const float* wq_scale, int heads, int v_dim,
                   const __nv_bfloat16* kv_b, const std::int32_t* positions, const float* cos_sin, bool interleaved,
                   __nv_bfloat16* qfull, cudaStream_t s);

}  // namespace troupe::kernels
