#pragma once
// The small steps of MLA between the projections, fused (a decode step ran them as six launches per layer, each
// 2.5-3 us of mostly launch latency at one token):
//
//   kv_a output row  [ c_kv (latent_dim) | k_pe (rope_dim) ]     q_a output row [ c_q (q_dim) ]
//          | RMSNorm(kv_norm)   | RoPE(position)                       | RMSNorm(q_norm)
//          v                    v                                      v
//   rows / cache slot [ latent | rope ]                           q_out [ q_dim ]
//
// mla_latent_prep replaces rmsnorm(kv) + the k_pe copy + rope(k_pe) + mla_cache_write + rmsnorm(q_a);
// mla_q_pe replaces rope(q) in place + the copy of q_pe into the absorbed query (decode path).
#include "kernels/core/batch.hpp"

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace troupe::kernels {

struct MlaLatentPrep {
  const __nv_bfloat16* kv = nullptr;  // [n, kv_stride]: c_kv | k_pe
  int kv_stride = 0;
  const __nv_bfloat16* kv_norm = nullptr;  // [latent_dim]
  const __nv_bfloat16* q_a = nullptr;      // [n, q_stride] or null (no q_lora: V2-Lite)
  int q_stride = 0, q_dim = 0;
  const __nv_bfloat16* q_norm = nullptr;  // [q_dim]
  __nv_bfloat16* q_out = nullptr;         // [n, q_dim]
  float eps = 1e-6f;
  int latent_dim = 0, rope_dim = 0;
  const float* cos_sin = nullptr;  // ops.hpp's rope table
  bool interleaved = false;
  __nv_bfloat16* rows = nullptr;  // [n, row_stride]: the normed, rope'd latent rows (prefill reads them)
  int row_stride = 0;
};

// Per token of b (positions, slot_mapping; a negative slot skips the cache write, as mla_cache_write does).
void mla_latent_prep(const MlaLatentPrep& p, const AttnBatch& b, __nv_bfloat16* cache, cudaStream_t s);

// q [n, heads, nope | rope]: RoPE of each head's rope part, written to qfull [n, heads, latent | rope]'s rope part
// (q itself is left as it was).
void mla_q_pe(const __nv_bfloat16* q, int n, int heads, int nope, int rope_dim, const std::int32_t* positions,
              const float* cos_sin, bool interleaved, __nv_bfloat16* qfull, int latent_dim, cudaStream_t s);

}  // namespace troupe::kernels
