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
#include "kernels/core/dot.cuh"
#include "kernels/core/pdl.cuh"
#include "kernels/core/vec.cuh"

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
template <bool GLOBAL>
__device__ __forceinline__ uint4 load_x(const __nv_bfloat16* xs) {
  if constexpr (GLOBAL) return __ldg(reinterpret_cast<const uint4*>(xs));
  return *reinterpret_cast<const uint4*>(xs);
}
template <bool FP8, bool GLOBAL = true>
__device__ __forceinline__ float chunk_dot(const uint4& w, const __nv_bfloat16* xs) {
  if constexpr (FP8) return detail::dot_fp8x16(w, load_x<GLOBAL>(xs), load_x<GLOBAL>(xs + 8));
  return detail::dot_bf16x8(w, load_x<GLOBAL>(xs));
}

using detail::warp_sum;

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
  detail::pdl_wait();  // the ids and x come from the kernels before (pdl.cuh)
  detail::pdl_trigger();
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

// Dots of G weight rows (K values each; null: skipped) with their h rows in shared memory (hs + g * K): this
// lane's chunks of all G rows loaded together, each chunk scaled per block (FP8).
template <bool FP8, int G>
__device__ __forceinline__ void rows_dot_smem(const unsigned char* const (&rows)[G], const __nv_bfloat16* hs, int K,
                                              const float* const (&scale)[G], int lane, float (&acc)[G]) {
  constexpr int kPer = FP8 ? 16 : 8;
#pragma unroll 4
  for (int c = lane; c < K / kPer; c += 32) {
    uint4 v[G];
#pragma unroll
    for (int g = 0; g < G; ++g)
      v[g] = rows[g] ? __ldg(reinterpret_cast<const uint4*>(rows[g]) + c) : make_uint4(0, 0, 0, 0);
#pragma unroll
    for (int g = 0; g < G; ++g) {
      if (!rows[g]) continue;
      const float d = chunk_dot<FP8, false>(v[g], hs + std::size_t(g) * K + c * kPer);
      if constexpr (FP8)
        acc[g] = fmaf(scale[g][c * kPer / 128], d, acc[g]);
      else
        acc[g] += d;
    }
  }
}

// grid (ceil(hidden / kGemvWarps), n); dynamic shared memory: top_k * inter bf16, the token's h rows, staged once
// per block (read from L1 instead, and with the (entry, chunk) pairs walked flat, it took 68 us on R1 against 58;
// walked flat from shared memory with the next batch prefetched, 87). A warp reads kDownRows experts' rows at a
// time: one 2 KB row at a time (R1) left a warp 9 dependent rounds of 4 loads per lane.
constexpr int kDownRows = 3;
template <bool FP8>
__global__ void __launch_bounds__(kGemvWarps * 32) gemv_down_kernel(GemvArgs a) {
  extern __shared__ __align__(16) unsigned char gemv_smem[];
  auto* hs = reinterpret_cast<__nv_bfloat16*>(gemv_smem);
  detail::pdl_wait();  // h comes from the gate/up GEMV (pdl.cuh)
  detail::pdl_trigger();
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
  for (int k0 = 0; k0 < a.top_k; k0 += kDownRows) {
    const unsigned char* rows[kDownRows];
    const float* sc[kDownRows];
#pragma unroll
    for (int g = 0; g < kDownRows; ++g) {
      const int k = k0 + g, e = k < a.top_k ? a.topk_ids[t * a.top_k + k] : -1;
      const bool ok = e >= 0 && e < a.num_experts;
      const auto* w2 = static_cast<const unsigned char*>(a.w2);
      rows[g] = ok ? w2 + (std::size_t(e) * a.hidden + j) * a.inter * esz : nullptr;
      sc[g] = FP8 && ok ? a.w2_scale + (std::size_t(e) * hb + j / 128) * ib : nullptr;
    }
    float part[kDownRows] = {};
    rows_dot_smem<FP8, kDownRows>(rows, hs + std::size_t(k0) * a.inter, a.inter, sc, lane, part);
#pragma unroll
    for (int g = 0; g < kDownRows; ++g)
      if (rows[g]) acc += a.topk_weights[t * a.top_k + k0 + g] * part[g];
  }
  acc = warp_sum(acc);
  if (lane == 0) a.out[std::size_t(t) * a.hidden + j] += acc;
}

}  // namespace troupe::kernels::moe_detail
