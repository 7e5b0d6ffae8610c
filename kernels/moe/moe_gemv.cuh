#pragma once
// The expert GEMMs of a single decode token as two GEMVs: one row of x against each chosen expert's weights.
// At m = 1 the tiled kernels of moe_gemm.cuh spend their k loop on 16-row mma tiles of which 15 rows are zero and
// a __syncthreads per 4 KB stage; they stream R1's 264 MB of gate/up weights at ~36% of HBM. Here one warp owns
// one output and each lane streams 16-byte chunks of the weight rows straight into registers (the loads of the
// unrolled loop stay in flight together), FMAs in float32; x comes through L1, the down GEMV stages the token's h
// rows in shared memory:
//
//   gemv_gate_up: warp (entry p, row i):  g = x[t(p)] . W_gate[e][i],  u = x[t(p)] . W_up[e][i]
//                                        h[p, i] = bf16(silu(g) * u)
//   gemv_down:    warp (token t, row j):  out[t, j] += sum_p of t  weight(p) * (h[p] . W2[e(p)][j])
//
// FP8 rows: chunk c of 16 bytes lies inside one 128-wide k block, so each chunk's partial dot is multiplied by its
// block scale (scale [e, row / 128, c * 16 / 128]). bf16 rows: chunks of 8 elements, no scale. One warp owns each
// out[t, j], so the down GEMV adds without atomics (deterministic, unlike the tiled path).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <cstdint>

namespace troupe::kernels::moe_detail {

struct GemvArgs {
  const __nv_bfloat16* x;        // [n, hidden]
  const std::int32_t* topk_ids;  // [n, top_k]
  const float* topk_weights;     // [n, top_k]
  int top_k, num_experts, hidden, inter;
  const void* w13;  // [E, 2 * inter, hidden]
  const void* w2;   // [E, hidden, inter]
  const float *w13_scale, *w2_scale;
  __nv_bfloat16* h;  // [n * top_k, inter]
  float* out;        // [n, hidden]
};

constexpr int kGemvWarps = 8;

// Weight chunk of 16 bytes -> float FMAs against x (bf16, 16 / sizeof(T) values from xs). GLOBAL: xs in global
// memory, read through the read-only path (every warp of an SM reads the same x row: L1 hits after the first);
// otherwise shared memory.
template <bool FP8, bool GLOBAL>
__device__ __forceinline__ uint4 load_x(const __nv_bfloat16* xs) {
  if constexpr (GLOBAL) return __ldg(reinterpret_cast<const uint4*>(xs));
  return *reinterpret_cast<const uint4*>(xs);
}
template <bool FP8, bool GLOBAL = true>
__device__ __forceinline__ float chunk_dot(const uint4& w, const __nv_bfloat16* xs) {
  const uint4 xa = load_x<FP8, GLOBAL>(xs);
  const __nv_bfloat162* xb = reinterpret_cast<const __nv_bfloat162*>(&xa);
  float acc = 0.f;
  if constexpr (FP8) {
    const uint4 xa2 = load_x<FP8, GLOBAL>(xs + 8);
    const __nv_bfloat162* xb2 = reinterpret_cast<const __nv_bfloat162*>(&xa2);
    const __nv_fp8x2_storage_t* wp = reinterpret_cast<const __nv_fp8x2_storage_t*>(&w);
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const float2 wf = __half22float2(__half2(__nv_cvt_fp8x2_to_halfraw2(wp[i], __NV_E4M3)));
      const float2 xf = __bfloat1622float2(i < 4 ? xb[i] : xb2[i - 4]);
      acc = fmaf(wf.x, xf.x, fmaf(wf.y, xf.y, acc));
    }
  } else {
    const __nv_bfloat162* wb = reinterpret_cast<const __nv_bfloat162*>(&w);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const float2 wf = __bfloat1622float2(wb[i]), xf = __bfloat1622float2(xb[i]);
      acc = fmaf(wf.x, xf.x, fmaf(wf.y, xf.y, acc));
    }
  }
  return acc;
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Dot of two weight rows (gate and up; K values, 16-byte aligned) with xs (shared memory): this lane's chunks,
// each scaled by its block's scale (FP8).
template <bool FP8>
__device__ __forceinline__ float2 row_dot2(const void* row_a, const void* row_b, const __nv_bfloat16* xs, int K,
                                           const float* scale_a, const float* scale_b, int lane) {
  constexpr int kPer = FP8 ? 16 : 8;
  const uint4* wa = static_cast<const uint4*>(row_a);
  const uint4* wb = static_cast<const uint4*>(row_b);
  const int chunks = K / kPer;
  float2 acc{0.f, 0.f};
#pragma unroll 8
  for (int c = lane; c < chunks; c += 32) {
    const uint4 va = __ldg(wa + c), vb = __ldg(wb + c);
    const float da = chunk_dot<FP8>(va, xs + c * kPer), db = chunk_dot<FP8>(vb, xs + c * kPer);
    if constexpr (FP8) {
      acc.x = fmaf(scale_a[c * kPer / 128], da, acc.x), acc.y = fmaf(scale_b[c * kPer / 128], db, acc.y);
    } else {
      acc.x += da, acc.y += db;
    }
  }
  return acc;
}

// grid (ceil(inter / kGemvWarps), n * top_k).
template <bool FP8>
__global__ void __launch_bounds__(kGemvWarps * 32) gemv_gate_up_kernel(GemvArgs a) {
  const int p = blockIdx.y, e = a.topk_ids[p];
  if (e < 0 || e >= a.num_experts) return;  // skipped ids leave h unread
  const __nv_bfloat16* xs = a.x + std::size_t(p / a.top_k) * a.hidden;
  const int lane = threadIdx.x % 32, i = blockIdx.x * kGemvWarps + threadIdx.x / 32;
  if (i >= a.inter) return;
  const std::size_t esz = FP8 ? 1 : 2, rows = std::size_t(2) * a.inter;
  const auto* base = static_cast<const unsigned char*>(a.w13) + std::size_t(e) * rows * a.hidden * esz;
  const int kb = (a.hidden + 127) / 128, ib = (a.inter + 127) / 128;
  const float* sg = FP8 ? a.w13_scale + (std::size_t(e) * 2 * ib + i / 128) * kb : nullptr;
  const float* su = FP8 ? a.w13_scale + (std::size_t(e) * 2 * ib + ib + i / 128) * kb : nullptr;
  const float2 gu = row_dot2<FP8>(base + std::size_t(i) * a.hidden * esz,
                                  base + (std::size_t(a.inter) + i) * a.hidden * esz, xs, a.hidden, sg, su, lane);
  const float g = warp_sum(gu.x), u = warp_sum(gu.y);
  if (lane == 0) a.h[std::size_t(p) * a.inter + i] = __float2bfloat16(g / (1.f + expf(-g)) * u);
}

// Dot of one weight row (K values) with hs (shared memory): this lane's chunks, scaled per block (FP8).
template <bool FP8>
__device__ __forceinline__ float row_dot_smem(const void* row, const __nv_bfloat16* hs, int K, const float* scale_row,
                                              int lane) {
  constexpr int kPer = FP8 ? 16 : 8;
  const uint4* w = static_cast<const uint4*>(row);
  float acc = 0.f;
#pragma unroll 4
  for (int c = lane; c < K / kPer; c += 32) {
    const uint4 v = __ldg(w + c);
    const float d = chunk_dot<FP8, false>(v, hs + c * kPer);
    if constexpr (FP8)
      acc = fmaf(scale_row[c * kPer / 128], d, acc);
    else
      acc += d;
  }
  return acc;
}

// grid (ceil(hidden / kGemvWarps), n); dynamic shared memory: top_k * inter bf16, the token's h rows, staged once
// per block (read from L1 instead, and with the (entry, chunk) pairs walked flat, it took 68 us on R1 against 58).
template <bool FP8>
__global__ void __launch_bounds__(kGemvWarps * 32) gemv_down_kernel(GemvArgs a) {
  extern __shared__ __align__(16) unsigned char gemv_smem[];
  auto* hs = reinterpret_cast<__nv_bfloat16*>(gemv_smem);
  const int t = blockIdx.y;
  const __nv_bfloat16* src = a.h + std::size_t(t) * a.top_k * a.inter;
  for (int i = threadIdx.x; i < a.top_k * a.inter / 8; i += blockDim.x)
    reinterpret_cast<uint4*>(hs)[i] = reinterpret_cast<const uint4*>(src)[i];
  __syncthreads();
  const int lane = threadIdx.x % 32, j = blockIdx.x * kGemvWarps + threadIdx.x / 32;
  if (j >= a.hidden) return;
  const std::size_t esz = FP8 ? 1 : 2;
  const int ib = (a.inter + 127) / 128, hb = (a.hidden + 127) / 128;
  float acc = 0.f;
  for (int k = 0; k < a.top_k; ++k) {
    const int p = t * a.top_k + k, e = a.topk_ids[p];
    if (e < 0 || e >= a.num_experts) continue;
    const auto* row = static_cast<const unsigned char*>(a.w2) + (std::size_t(e) * a.hidden + j) * a.inter * esz;
    const float* sc = FP8 ? a.w2_scale + (std::size_t(e) * hb + j / 128) * ib : nullptr;
    acc += a.topk_weights[p] * row_dot_smem<FP8>(row, hs + std::size_t(k) * a.inter, a.inter, sc, lane);
  }
  acc = warp_sum(acc);
  if (lane == 0) a.out[std::size_t(t) * a.hidden + j] += acc;
}

}  // namespace troupe::kernels::moe_detail
