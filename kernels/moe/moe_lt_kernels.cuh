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

// FP8 experts: one row per CTA of kLtQuantThreads, each 128-column group -> e4m3 with one scale (amax / 448, as
// quant_fp8_group128) by a half-warp of 8 values per thread, BATCH groups per half-warp loaded before any is
// reduced (x's 7168-wide rows: 56 groups on 16 half-warps, BATCH 4, one round; h's 2048: 16 groups, BATCH 1). The
// scales go token-major within the row's expert segment, the layout cuBLASLt's VEC128 scales take:
// scale(row p, group kb) at seg * KB + kb * m + (p - seg), seg / m the segment's first row / rows (looked up by
// one thread while the first loads are in flight). SILU: the values are silu(gate) * up of gu's row p (K = I);
// else x's row of perm[p] (K = H; padding rows: zeros).
constexpr int kLtQuantThreads = 256;

template <bool SILU, int BATCH>
__global__ void __launch_bounds__(kLtQuantThreads) lt_quant_kernel(const bf16* src, const std::int32_t* perm,
                                                                   int top_k, const std::int32_t* offsets, int E,
                                                                   int K, __nv_fp8_e4m3* q, float* scales) {
  constexpr int kHalves = kLtQuantThreads / 16, kPerRound = kHalves * BATCH;
  __shared__ int seg_m[2];
  const int p = blockIdx.x, KB = K / 128, half = threadIdx.x / 16, lane = threadIdx.x % 16;
  const bf16* row = src + std::size_t(p) * 2 * K;  // SILU: gate | up of row p
  bool zero = false;
  if constexpr (!SILU) {
    const int ent = perm[p];
    zero = ent < 0;
    row = src + std::size_t(zero ? 0 : ent / top_k) * K;
  }
  const int rounds = (KB + kPerRound - 1) / kPerRound;  // the same for every thread: __syncthreads below
  for (int r = 0; r < rounds; ++r) {
    const int kb0 = r * kPerRound + half;
    float v[BATCH][8];
#pragma unroll
    for (int i = 0; i < BATCH; ++i) {
      const int c = (kb0 + i * kHalves) * 128 + lane * 8;
#pragma unroll
      for (int j = 0; j < 8; ++j) v[i][j] = 0.f;
      if (kb0 + i * kHalves >= KB || zero) continue;
      detail::load_bf16x8(row + c, v[i]);
      if constexpr (SILU) {
        float u[8];
        detail::load_bf16x8(row + K + c, u);
#pragma unroll
        for (int j = 0; j < 8; ++j) v[i][j] = v[i][j] / (1.f + __expf(-v[i][j])) * u[j];
      }
    }
    if (r == 0) {
      if (threadIdx.x == 0) {
        int lo = 0, hi = E - 1;  // the last expert whose segment starts at or before p
        while (lo < hi) {
          const int mid = (lo + hi + 1) / 2;
          if (offsets[mid] <= p) lo = mid; else hi = mid - 1;
        }
        seg_m[0] = offsets[lo], seg_m[1] = offsets[lo + 1] - offsets[lo];
      }
      __syncthreads();
    }
    const int seg = seg_m[0], m = seg_m[1];
#pragma unroll
    for (int i = 0; i < BATCH; ++i) {
      const int kb = kb0 + i * kHalves;
      const float scale = detail::group128_fp8_scale(v[i]);  // every lane of the warp: it shuffles
      if (kb >= KB) continue;
      if (lane == 0) scales[std::size_t(seg) * KB + std::size_t(kb) * m + (p - seg)] = scale;
      detail::store_fp8x8(v[i], 1.0f / scale, q + std::size_t(p) * K + kb * 128 + lane * 8);
    }
  }
}

// 8 consecutive values as floats (y of the combine: bf16 or float).
__device__ __forceinline__ void load_x8(const bf16* p, float (&f)[8]) { detail::load_bf16x8(p, f); }
__device__ __forceinline__ void load_x8(const float* p, float (&f)[8]) {
  const float4 a = reinterpret_cast<const float4*>(p)[0], b = reinterpret_cast<const float4*>(p)[1];
  f[0] = a.x, f[1] = a.y, f[2] = a.z, f[3] = a.w, f[4] = b.x, f[5] = b.y, f[6] = b.z, f[7] = b.w;
}

constexpr int kLtCombineMaxK = 64;

// out[t] += sum_k w[t, k] * y[inv[t, k]]: one CTA per token, 8 columns per thread, the k terms summed in order.
// H % 8 == 0, top_k <= kLtCombineMaxK.
template <typename YT>
__global__ void lt_combine_kernel(const YT* y, const std::int32_t* inv, const float* wts, int top_k, int H,
                                  float* out) {
  __shared__ int rows[kLtCombineMaxK];
  __shared__ float w[kLtCombineMaxK];
  const int t = blockIdx.x;
  if (threadIdx.x < top_k)
    rows[threadIdx.x] = inv[t * top_k + threadIdx.x], w[threadIdx.x] = wts[t * top_k + threadIdx.x];
  __syncthreads();
  for (int c = threadIdx.x * 8; c < H; c += blockDim.x * 8) {
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int k = 0; k < top_k; ++k) {
      if (rows[k] < 0) continue;
      float v[8];
      load_x8(y + std::size_t(rows[k]) * H + c, v);
#pragma unroll
      for (int j = 0; j < 8; ++j) acc[j] += w[k] * v[j];
    }
    float4* o = reinterpret_cast<float4*>(out + std::size_t(t) * H + c);
    float4 a = o[0], b = o[1];
    a.x += acc[0], a.y += acc[1], a.z += acc[2], a.w += acc[3];
    b.x += acc[4], b.y += acc[5], b.z += acc[6], b.w += acc[7];
    o[0] = a, o[1] = b;
  }
}

}  // namespace troupe::kernels::moe_detail
