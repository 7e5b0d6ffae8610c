#pragma once
// MLA attention for any latent / rope width (the tiny test checkpoints: 96 + 16, 128 + 32): one CTA per
// (token, head), 4 warps each taking every 4th cached position with its own online softmax, merged at the end.
// Scalar float32 math; correctness over speed (the real models take the 512 + 64 kernel).
#include "kernels/core/batch.hpp"
#include "kernels/mla/mla_plan.hpp"

#include <cuda_bf16.h>
#include <cstdint>

namespace troupe::kernels::mla_detail {

constexpr int kGenericThreads = 128;
constexpr int kGenericWarps = kGenericThreads / 32;
constexpr int kMaxRopeGeneric = 256;
constexpr int kPerLane = kMaxLatentGeneric / 32;  // latent columns lane, lane + 32, ... held in registers

__global__ void __launch_bounds__(kGenericThreads) mla_generic_kernel(const __nv_bfloat16* q, int num_heads,
                                                                      int latent, int rope,
                                                                      const __nv_bfloat16* cache, AttnBatch b,
                                                                      float scale_log2, __nv_bfloat16* out) {
  __shared__ float qs[kMaxLatentGeneric + kMaxRopeGeneric];
  __shared__ float wm[kGenericWarps], wl[kGenericWarps];
  __shared__ float wo[kGenericWarps][kMaxLatentGeneric];
  const int t = blockIdx.x, h = blockIdx.y, warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int width = latent + rope;
  const __nv_bfloat16* qrow = q + (std::size_t(t) * num_heads + h) * width;
  for (int i = threadIdx.x; i < width; i += kGenericThreads) qs[i] = __bfloat162float(qrow[i]);
  __syncthreads();
  const int seq = b.token_seq[t], n = b.positions[t] + 1;
  const std::int32_t* table = b.block_tables + std::size_t(seq) * b.max_blocks_per_seq;
  float m = -INFINITY, l = 0.f, o[kPerLane];
#pragma unroll
  for (int i = 0; i < kPerLane; ++i) o[i] = 0.f;
  for (int p = warp; p < n; p += kGenericWarps) {
    const long slot = long(table[p / b.block_size]) * b.block_size + p % b.block_size;
    const __nv_bfloat16* row = cache + slot * width;
    float dot = 0.f;
    for (int i = lane; i < width; i += 32) dot += qs[i] * __bfloat162float(row[i]);
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, off);
    const float s = dot * scale_log2, m_new = fmaxf(m, s);
    const float alpha = exp2f(m - m_new), pexp = exp2f(s - m_new);
    l = l * alpha + pexp;
#pragma unroll
    for (int i = 0; i < kPerLane; ++i)
      if (lane + 32 * i < latent) o[i] = o[i] * alpha + pexp * __bfloat162float(row[lane + 32 * i]);
    m = m_new;
  }
  if (lane == 0) wm[warp] = m, wl[warp] = l;
#pragma unroll
  for (int i = 0; i < kPerLane; ++i)
    if (lane + 32 * i < latent) wo[warp][lane + 32 * i] = o[i];
  __syncthreads();
  float mx = -INFINITY;
  for (int w = 0; w < kGenericWarps; ++w) mx = fmaxf(mx, wm[w]);
  float den = 0.f;
  for (int w = 0; w < kGenericWarps; ++w) den += wm[w] == -INFINITY ? 0.f : wl[w] * exp2f(wm[w] - mx);
  __nv_bfloat16* orow = out + (std::size_t(t) * num_heads + h) * latent;
  for (int cidx = threadIdx.x; cidx < latent; cidx += kGenericThreads) {
    float acc = 0.f;
    for (int w = 0; w < kGenericWarps; ++w)
      if (wm[w] != -INFINITY) acc += wo[w][cidx] * exp2f(wm[w] - mx);
    orow[cidx] = __float2bfloat16(den > 0.f ? acc / den : 0.f);
  }
}

}  // namespace troupe::kernels::mla_detail
