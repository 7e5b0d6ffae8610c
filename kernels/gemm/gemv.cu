// Decode GEMV kernels (see gemv.hpp for the layout of warps over rows and k).
//
// Chunk c of a row is 16 bytes: 16 FP8 weights (k elements 16c .. 16c + 15, inside k block 16c / 128, whose
// scale multiplies the chunk's partial dot) or 8 bf16 weights. Lane l of a warp takes chunks l, l + 32, ...
// of its split's range, U of them per row and batch, all R x U loads issued before the first FMA. Launched as a
// programmatic dependent launch (pdl.cuh): the first batch is prefetched into L2 before waiting for the kernel
// that wrote X.
#include "kernels/core/dot.cuh"
#include "kernels/core/launch.hpp"
#include "kernels/core/pdl.cuh"
#include "kernels/core/vec.cuh"
#include "kernels/gemm/gemv.hpp"

#include <cstdint>
#include <stdexcept>

namespace troupe::kernels::gemv {
namespace {

struct Args {
  const __nv_bfloat16* x;
  const std::uint8_t* w;
  const float* w_scale;
  void* c;
  bool out_f32, accumulate;
  int m, n, k, splits;
  bool evict_first = true;  // the weights' L2 policy (dot.cuh); TROUPE_GEMV_EVICT_FIRST=0: evict-normal (A/B)
};

template <bool kFp8, int M>
__device__ __forceinline__ void load_x(const Args& a, int c, uint4 (&x)[M][2]) {
  constexpr int kPer = kFp8 ? 16 : 8;
#pragma unroll
  for (int t = 0; t < M; ++t) {
    const uint4* p = reinterpret_cast<const uint4*>(a.x + std::size_t(min(t, a.m - 1)) * a.k + c * kPer);
    x[t][0] = __ldg(p);
    if constexpr (kFp8) x[t][1] = __ldg(p + 1);
  }
}

__device__ __forceinline__ void store(const Args& a, std::size_t i, float v) {
  detail::store_out(a.c, a.out_f32, a.accumulate, i, v);
}

template <bool kFp8, int R, int M>
__global__ void __launch_bounds__(kWarps * 32) gemv_kernel(Args a) {
  constexpr int U = R >= 8 ? 1 : 8 / R;  // chunks per row and lane in one batch
  constexpr int kPer = kFp8 ? 16 : 8;
  __shared__ float part[kWarps][R * M];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, S = a.splits;
  const int row0 = (blockIdx.x * (kWarps / S) + warp / S) * R, split = warp % S;
  const int chunks = a.k / kPer, per_split = (chunks + S - 1) / S;
  const int begin = split * per_split, end = min(chunks, begin + per_split);
  const std::size_t row_bytes = std::size_t(a.k) * (kFp8 ? 1 : 2);
  const float* scale = kFp8 ? a.w_scale + std::size_t(row0 / 128) * (a.k / 128) : nullptr;
  float acc[R][M] = {};
  const std::uint64_t policy = detail::l2_policy(a.evict_first);
  const bool live = row0 < a.n;
  const std::uint8_t* rows[R];
#pragma unroll
  for (int r = 0; r < R; ++r) rows[r] = a.w + std::size_t(min(row0 + r, a.n - 1)) * row_bytes;
  // The first batch of weights into L2 while the kernel before ends (no earlier kernel writes them; pdl.cuh).
  // Loading them into registers here instead, with the loop reordered around it, measured slower.
#pragma unroll
  for (int u = 0; u < U; ++u)
#pragma unroll
    for (int r = 0; r < R; ++r)
      if (live && begin + lane + 32 * u < end)
        asm volatile("prefetch.global.L2 [%0];" ::"l"(rows[r] + std::size_t(begin + lane + 32 * u) * 16));
  detail::pdl_wait();
  detail::pdl_trigger();
  for (int c0 = begin + lane; live && c0 < end; c0 += 32 * U) {
    uint4 wv[U][R];
#pragma unroll
    for (int u = 0; u < U; ++u)
#pragma unroll
      for (int r = 0; r < R; ++r)
        wv[u][r] = c0 + 32 * u < end ? detail::ld_stream16(rows[r] + std::size_t(c0 + 32 * u) * 16, policy)
                                     : make_uint4(0, 0, 0, 0);
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int c = c0 + 32 * u;
      if (c >= end) break;
      uint4 x[M][2];
      load_x<kFp8, M>(a, c, x);
      const float sc = kFp8 ? __ldg(scale + c * kPer / 128) : 1.f;
#pragma unroll
      for (int r = 0; r < R; ++r)
#pragma unroll
        for (int t = 0; t < M; ++t) {
          const float d = kFp8 ? detail::dot_fp8x16(wv[u][r], x[t][0], x[t][1]) : detail::dot_bf16x8(wv[u][r], x[t][0]);
          acc[r][t] = kFp8 ? fmaf(sc, d, acc[r][t]) : acc[r][t] + d;
        }
    }
  }
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int t = 0; t < M; ++t) acc[r][t] = detail::warp_sum(acc[r][t]);
  if (S > 1) {  // the group's S warps are adjacent: split 0 adds the others' partials in split order
    if (lane == 0)
#pragma unroll
      for (int i = 0; i < R * M; ++i) part[warp][i] = acc[i / M][i % M];
    __syncthreads();
    if (split != 0) return;
#pragma unroll
    for (int i = 0; i < R * M; ++i)
      for (int s = 1; s < S; ++s) acc[i / M][i % M] += part[warp + s][i];
  }
  if (lane != 0 || row0 >= a.n) return;
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int t = 0; t < M; ++t)
      if (row0 + r < a.n && t < a.m) store(a, std::size_t(t) * a.n + row0 + r, acc[r][t]);
}

template <bool kFp8, int R>
void launch_m(const Args& a, const Plan& p, cudaStream_t s) {
  auto* kernel = a.m == 1 ? gemv_kernel<kFp8, R, 1> : a.m == 2 ? gemv_kernel<kFp8, R, 2> : gemv_kernel<kFp8, R, 4>;
  launch_pdl(kernel, dim3(p.blocks), dim3(kWarps * 32), 0, s, kFp8 ? "FP8 GEMV" : "bf16 GEMV", a);
}

template <bool kFp8>
void launch(Args a, const Plan& p, cudaStream_t s) {
  if (!p.ok) throw std::logic_error("GEMV called without a valid plan");
  static const bool evict_first = !env_is("TROUPE_GEMV_EVICT_FIRST", "0");
  a.evict_first = evict_first;
  if (!detail::aligned16(a.x) || !detail::aligned16(a.w))
    throw std::invalid_argument("GEMV: X and W must be 16-byte aligned");
  if (p.rows == 1)
    launch_m<kFp8, 1>(a, p, s);
  else if (p.rows == 2)
    launch_m<kFp8, 2>(a, p, s);
  else
    launch_m<kFp8, 4>(a, p, s);
}

}  // namespace

void fp8(const __nv_bfloat16* x, const __nv_fp8_e4m3* w, const float* w_scale, __nv_bfloat16* c, int m, int n,
         int k, const Plan& p, cudaStream_t s) {
  const Args a{x, reinterpret_cast<const std::uint8_t*>(w), w_scale, c, false, false, m, n, k, p.splits};
  launch<true>(a, p, s);
}

void bf16(const __nv_bfloat16* x, const __nv_bfloat16* w, void* c, bool out_f32, bool accumulate, int m, int n,
          int k, const Plan& p, cudaStream_t s) {
  const Args a{x, reinterpret_cast<const std::uint8_t*>(w), nullptr, c, out_f32, accumulate, m, n, k, p.splits};
  launch<false>(a, p, s);
}

}  // namespace troupe::kernels::gemv
