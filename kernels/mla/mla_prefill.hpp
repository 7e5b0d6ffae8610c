#pragma once
// MLA prefill in the non-absorbed form (what vLLM and SGLang run for prefill): the cached latents of each
// prefill chunk's context are expanded per head by kv_b_proj (a GEMM, done by the caller) and attention runs
// with head dims QK = nope + rope and V = v_head_dim, FlashAttention-2 style on tensor cores. Per (query, key)
// pair and head that is 2 x (192 + 128) flops for V3 instead of the absorbed form's 2 x (576 + 512).
//
// One "piece" is a bounded stretch of expanded keys: the contexts of the step's prefill chunks are cut into
// segments that are packed into pieces of at most `piece_rows` keys (mla_prefill_plan.hpp). Per piece:
//
//   mla_prefill_gather:    cache rows of each segment (seq, key positions [k_lo, k_hi))
//                            -> lat [rows, latent], kpe [rows, rope]         (buffer row buf0 + (pos - k_lo))
//   caller's GEMM:         kv = lat x kv_b^T   [rows, heads * (nope + v)], per head [k_nope | v]
//   mla_prefill_attention: per segment, its chunk's queries against the segment's keys (causal: key position
//                          <= query position), K_h = [k_nope_h | kpe] (the rope part is shared by all heads).
//
// A chunk whose context spans several pieces is merged through its log-sum-exp: the first segment writes
// out (normalized) and lse, later ones combine with what is there (lse: float32 [tokens, heads], base 2).
#include "kernels/core/batch.hpp"
#include "kernels/mla/mla_prefill_plan.hpp"  // MlaPrefillSeg, the flags, the query tile

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace troupe::kernels {

struct MlaPrefillDims {
  int heads = 0, nope = 0, rope = 0, v = 0;
};

// (nope, rope, v) pairs with a compiled kernel: (128, 64, 128) V2/V3/R1, (64, 32, 64) and (32, 16, 32) the tiny
// test checkpoints.
bool mla_prefill_supported(int nope, int rope, int v);

// segs: the piece's segments (device), sorted by buf0, covering buffer rows [0, rows). Reads b.block_tables,
// b.max_blocks_per_seq, b.block_size. latent and rope must be multiples of 8.
void mla_prefill_gather(const __nv_bfloat16* cache, int latent, int rope, const AttnBatch& b,
                        const MlaPrefillSeg* segs, int num_segs, int rows, __nv_bfloat16* lat, __nv_bfloat16* kpe,
                        cudaStream_t s);

// q: [tokens, heads, nope | rope] (rope'd); kv: [rows, heads * (nope + v)]; kpe: [rows, rope];
// segs: all segments of the step (device); tiles: this piece's work list, entry = (segment << 16) | query tile
// (tiles of tile_q rows, as planned);
// out: [tokens, heads, v]; lse: [tokens, heads] float32. Throws invalid_argument for unsupported dims.
void mla_prefill_attention(const __nv_bfloat16* q, const MlaPrefillDims& d, const __nv_bfloat16* kv,
                           const __nv_bfloat16* kpe, const MlaPrefillSeg* segs, const std::int32_t* tiles,
                           int num_tiles, int tile_q, float scale, float* lse, __nv_bfloat16* out, cudaStream_t s);

// Whether DeepSeek's dims (128 / 64 / 128) in 128-row tiles run on the wgmma kernel (mla_prefill_wgmma.cuh)
// instead of the mma.sync one: on unless TROUPE_MLA_PREFILL_WGMMA=0. Returns the previous setting.
bool mla_prefill_use_wgmma(bool on);

// dst[idx[i]] = src[i] for i < n, rows of `cols` bf16 (the absorbed rows of a mixed step back into place).
void scatter_rows_bf16(const __nv_bfloat16* src, const std::int32_t* idx, int n, int cols, __nv_bfloat16* dst,
                       cudaStream_t s);

}  // namespace troupe::kernels
