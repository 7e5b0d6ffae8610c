#pragma once
// Multi-head latent attention (DeepSeek-V2/V3) over the paged latent cache.
//
// Cache layout: [num_blocks, block_size, latent_dim + rope_dim] bf16, one row per token:
//   | kv_a_layernorm(c_kv)  (latent_dim = kv_lora_rank, 512 in V3) | rope(k_pe) (rope_dim = 64 in V3) |
// Every head shares the row (MQA in latent space), so a decode step reads 576 * 2 bytes per cached token.
//
// Absorbed form (decode, and any chunk): the backend turns q_nope [t, h, nope] into latent space through
// W_UK (q_lat = q_nope * W_UK_h, [t, h, latent_dim]), appends q_pe (rope'd), and this kernel computes
//   o_lat[t, h] = softmax(q[t, h] . row[p] * scale, p <= positions[t]) * row[p][0:latent_dim]
// the backend then applies W_UV per head. Prefill chunks (32+ tokens) instead expand K/V per head (kv_b_proj over
// the cached latents, a GEMM) and run ordinary attention with head dims (nope + rope) / v_head_dim: mla_prefill.hpp.
// latent 512 + rope 64 takes a tensor-core kernel (16 query rows per CTA share each cached row); other widths
// (the tiny test checkpoints) a scalar one. A mixed batch may hold prefill chunks and decode tokens.
#include "kernels/core/batch.hpp"

#include <cuda_bf16.h>
#include <cuda_runtime.h>

namespace troupe::kernels {

// Writes each token's [latent | rope] row (already normed and rope'd) to its slot. rows: [num_tokens, stride].
// A token whose slot_mapping is negative (padding) is skipped. Only b.num_tokens and b.slot_mapping are read.
void mla_cache_write(const __nv_bfloat16* rows, int stride, int latent_dim, int rope_dim, const AttnBatch& b,
                     __nv_bfloat16* cache, cudaStream_t s);

// q: [num_tokens, num_heads, latent_dim + rope_dim]; out: [num_tokens, num_heads, latent_dim].
// Online softmax in float32; split-KV over long sequences where the batch alone does not fill the GPU.
// `workspace` holds the split partials: mla_workspace_bytes() bytes (0 for widths other than 512: no split;
// it depends on the device's SM count, so ask on the device that runs the kernel). Throws invalid_argument
// on bad dims.
//
// With uv (decode-sized batches, mla_absorb.hpp's mla_absorb_fits): the split merge also applies W_UV and writes
// uv->out [num_tokens, num_heads, v_dim] (out is then scratch for the unsplit case).
struct MlaUvOut {
  const __nv_bfloat16* kv_b = nullptr;  // [num_heads * (nope + v_dim), latent_dim]; W_UV[h]: rows h (nope + v) + nope..
  int nope = 0, v_dim = 0;
  __nv_bfloat16* out = nullptr;
};
std::size_t mla_workspace_bytes(int max_tokens, int num_heads, int latent_dim, int max_seq_len, int block_size);
void mla_attention_absorbed(const __nv_bfloat16* q, int num_heads, int latent_dim, int rope_dim,
                            const __nv_bfloat16* cache, const AttnBatch& b, float scale, void* workspace,
                            __nv_bfloat16* out, cudaStream_t s, const MlaUvOut* uv = nullptr);

}  // namespace troupe::kernels
