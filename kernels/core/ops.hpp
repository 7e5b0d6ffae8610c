#pragma once
// Element-wise and row-wise kernels shared by every architecture. All pointers are device pointers; every
// call is asynchronous on `stream`. Activations are bf16, the residual stream is float32 (the cpu oracle
// is float32 end to end; keeping the residual in float32 keeps the error from growing with depth).
#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/core/batch.hpp"

namespace troupe::kernels {

using bf16 = __nv_bfloat16;
using fp8 = __nv_fp8_e4m3;

// out[i] = table[ids[i]] ([n, hidden]); the caller has range-checked the ids.
void embedding(const bf16* table, const std::int32_t* ids, int n, int hidden, float* residual_out, cudaStream_t s);

// residual += x (skipped when x is null), then out = rmsnorm(residual) * weight.  [n, hidden]
void add_rmsnorm(float* residual, const bf16* x, const bf16* weight, float eps, int n, int hidden, bf16* out,
                 cudaStream_t s);

// Plain RMSNorm of `dim` columns of strided rows (MLA's q_a / kv_a latents inside wider projection rows).
void rmsnorm(const bf16* x, int x_stride, const bf16* weight, float eps, int n, int dim, bf16* out, int out_stride,
             cudaStream_t s);

// RoPE in place. Row t of x holds `heads` heads of `head_stride` elements starting at t * row_stride; the
// rotated part of a head is [offset, offset + rot_dim). cos_sin is [max_positions, rot_dim] float32 with
// cos in the first rot_dim/2 columns and sin in the rest, computed on the host exactly as the cpu oracle
// (model/cpu/rope_yarn.cpp; YaRN mscale folded in). interleaved: the pairs are (2i, 2i+1) as DeepSeek's
// checkpoints store them; else rotate-half (Llama / Qwen2 / NeoX).
void rope(bf16* x, int n, int heads, int row_stride, int head_stride, int offset, int rot_dim,
          const std::int32_t* positions, const float* cos_sin, bool interleaved, cudaStream_t s);

// SwiGLU: out[n, inter] = silu(gate) * up, gate_up rows are [gate (inter) | up (inter)].
void silu_mul(const bf16* gate_up, int n, int inter, bf16* out, cudaStream_t s);

// Per-token-group FP8 quantization (DeepSeek's 1x128 activation scales): q = x / scale, scale = amax / 448
// per 128 consecutive values of a row. x [n, k], q [n, k], scales [n, k / 128] float32; k % 128 == 0.
void quant_fp8_group128(const bf16* x, int n, int k, fp8* q, float* scales, cudaStream_t s);

// float32 -> bf16 and back, for glue.
void to_bf16(const float* x, std::size_t count, bf16* out, cudaStream_t s);

// Llama / Qwen2 paged KV cache: k_cache and v_cache are [num_blocks, block_size, num_kv_heads, head_dim].
void cache_write_kv(const bf16* k, int k_stride, const bf16* v, int v_stride, int num_kv_heads, int head_dim,
                    const AttnBatch& b, bf16* k_cache, bf16* v_cache, cudaStream_t s);

// Causal GQA attention of every query token of the batch over its sequence's cached KV (positions
// 0..positions[t]), FlashAttention-style online softmax in float32. q rows [num_tokens, q_stride] with
// num_heads heads of head_dim (8, 16, 32, 64, 128 or 256); out [num_tokens, num_heads * head_dim]. Long
// contexts split the keys; the partials live in a 16 MB buffer per device allocated on the first such call
// (make it before capturing a CUDA graph).
void paged_attention(const bf16* q, int q_stride, int num_heads, int num_kv_heads, int head_dim,
                     const bf16* k_cache, const bf16* v_cache, const AttnBatch& b, float scale, bf16* out,
                     cudaStream_t s);

}  // namespace troupe::kernels
