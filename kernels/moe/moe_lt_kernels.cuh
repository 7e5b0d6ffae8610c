#pragma once
// moe_experts_lt's kernels (device code; moe_lt.cu launches them): grouping, gather (+ FP8 quantization), SiLU*up
// (+ quantization) and the weighted combine. Layouts: moe_lt_plan.hpp.
#include <cuda_bf16.h>
#include <cuda_fp8.h>

#include <cub/block/block_scan.cuh>

#include <cstdint>

#include "kernels/core/vec.cuh"
#include "kernels/moe/moe_lt_plan.hpp"

namespace troupe::kernels::moe_detail {

using bf16 = __nv_bfloat16;

constexpr int kLtGroupThreads = 1024, kLtMaxExperts = 1024;

// One CTA: count entries per expert, pad each count to kLtPad (or give every expert `uniform` rows, for the
// batched GEMMs), scan, place every entry (perm / inv) and mark the padding rows. The order inside an expert
// follows shared-memory atomics; no row's result depends on it.
__global__ void __launch_bounds__(kLtGroupThreads) lt_group_kernel(const std::int32_t* ids, int entries, int E,
                                                                   int uniform, std::int32_t* perm,
                                                                   std::int32_t* inv, std::int32_t* offsets) {
  using Scan = cub::BlockScan<int, kLtGroupThreads>;
  __shared__ typename Scan::TempStorage scan_tmp;
  __shared__ int cnt[kLtMaxExperts], off[kLtMaxExperts], fill[kLtMaxExperts];
  const int tid = threadIdx.x;
  if (tid < E) cnt[tid] = 0, fill[tid] = 0;
  __syncthreads();
  for (int i = tid; i < entries; i += kLtGroupThreads) {
    const int e = ids[i];
    if (e >= 0 && e < E) atomicAdd(&cnt[e], 1);
  }
  __syncthreads();
  const int mine = tid < E ? cnt[tid] : 0;
  const int padded = tid >= E ? 0 : uniform > 0 ? uniform : (mine + kLtPad - 1) / kLtPad * kLtPad;
  int row_off = 0, total = 0;
  Scan(scan_tmp).ExclusiveSum(padded, row_off, total);
  if (tid < E) off[tid] = row_off, offsets[tid] = row_off;
  if (tid == 0) offsets[E] = total;
  for (int r = mine; r < padded; ++r) perm[row_off + r] = -1;
  __syncthreads();
  for (int i = tid; i < entries; i += kLtGroupThreads) {
    const int e = ids[i];
    if (e >= 0 && e < E) {
      const int p = off[e] + atomicAdd(&fill[e], 1);
      perm[p] = i, inv[i] = p;
    } else {
      inv[i] = -1;
    }
  }
}

// x rows into expert order (bf16 experts); padding rows become zeros.
__global__ void lt_gather_kernel(const bf16* x, const std::int32_t* perm, int top_k, int H, bf16* a) {
  const int p = blockIdx.x, ent = perm[p];
  const uint4 zero = make_uint4(0, 0, 0, 0);
  for (int v = threadIdx.x; v < H / 8; v += blockDim.x) {
    const uint4 val = ent < 0 ? zero : reinterpret_cast<const uint4*>(x + std::size_t(ent / top_k) * H)[v];
    reinterpret_cast<uint4*>(a + std::size_t(p) * H)[v] = val;
  }
}

// h = silu(gate) * up in bf16 (bf16 experts), 8 columns per thread.
__global__ void lt_silu_kernel(const bf16* gu, std::size_t rows, int I, bf16* h) {
  const std::size_t vecs = rows * (I / 8), stride = std::size_t(gridDim.x) * blockDim.x;
  for (std::size_t v = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; v < vecs; v += stride) {
    const std::size_t p = v / (I / 8), c = (v % (I / 8)) * 8;
    float g[8], u[8];
    detail::load_bf16x8(gu + p * 2 * I + c, g);
    detail::load_bf16x8(gu + p * 2 * I + I + c, u);
#pragma unroll
    for (int j = 0; j < 8; ++j) g[j] = g[j] / (1.f + __expf(-g[j])) * u[j];
    detail::store_bf16x8(h + p * I + c, g);
  }
}

// FP8 experts: one row's 128-column group -> e4m3 with one scale (amax / 448, as quant_fp8_group128), 16 threads of
// 8 values per group, 16 groups per CTA. The scales go token-major within the row's expert segment, the layout
// cuBLASLt's VEC128 scales take:  scale(row p, group kb) at seg * KB + kb * m + (p - seg), seg / m the segment's
// first row / rows. SILU: the values are silu(gate) * up of gu's row p (K = I); else x's row of perm[p] (K = H).
template <bool SILU>
__global__ void lt_quant_kernel(const bf16* src, const std::int32_t* perm, int top_k, const std::int32_t* offsets,
                                int E, int K, __nv_fp8_e4m3* q, float* scales) {
  const int p = blockIdx.x, KB = K / 128, kb = blockIdx.y * 16 + threadIdx.x / 16, lane = threadIdx.x % 16;
  const bool live = kb < KB;
  const int c = kb * 128 + lane * 8;
  float v[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  if (live) {
    if constexpr (SILU) {
      float u[8];
      detail::load_bf16x8(src + std::size_t(p) * 2 * K + c, v);
      detail::load_bf16x8(src + std::size_t(p) * 2 * K + K + c, u);
#pragma unroll
      for (int j = 0; j < 8; ++j) v[j] = v[j] / (1.f + __expf(-v[j])) * u[j];
    } else {
      const int ent = perm[p];
      if (ent >= 0) detail::load_bf16x8(src + std::size_t(ent / top_k) * K + c, v);
    }
  }
  const float scale = detail::group128_fp8_scale(v);
  if (!live) return;
  if (lane == 0) {
    int lo = 0, hi = E - 1;  // the last expert whose segment starts at or before p
    while (lo < hi) {
      const int mid = (lo + hi + 1) / 2;
      if (offsets[mid] <= p) lo = mid; else hi = mid - 1;
    }
    const int seg = offsets[lo], m = offsets[lo + 1] - seg;
    scales[std::size_t(seg) * KB + std::size_t(kb) * m + (p - seg)] = scale;
  }
  detail::store_fp8x8(v, 1.0f / scale, q + std::size_t(p) * K + c);
}

__device__ __forceinline__ float to_f(float v) { return v; }
__device__ __forceinline__ float to_f(bf16 v) { return __bfloat162float(v); }

// out[t] += sum_k w[t, k] * y[inv[t, k]]: one CTA per token, the k terms summed in order.
template <typename YT>
__global__ void lt_combine_kernel(const YT* y, const std::int32_t* inv, const float* wts, int top_k, int H,
                                  float* out) {
  const int t = blockIdx.x;
  for (int c = threadIdx.x; c < H; c += blockDim.x) {
    float acc = 0;
    for (int k = 0; k < top_k; ++k) {
      const int p = inv[t * top_k + k];
      if (p >= 0) acc += wts[t * top_k + k] * to_f(y[std::size_t(p) * H + c]);
    }
    out[std::size_t(t) * H + c] += acc;
  }
}

}  // namespace troupe::kernels::moe_detail
