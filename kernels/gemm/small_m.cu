// Small-m GEMM kernels (see small_m.hpp). One block: 64 weight rows x one k-range; one warp: 16 rows.
//
// mma.sync computes D[16 rows, 8 tokens] += W[16, kk] X[kk, 8]. A dot product does not care in which order
// its k terms come, so each thread loads 16 contiguous bytes of its weight rows g and g+8 (g = lane / 4,
// q = lane % 4) and gives them to the k slots its fragment owns; the token fragment of the same thread
// owns the same slots, so the tokens are read from the same 16 bytes of k. Steps go in pairs so that a
// quad reads whole 128-byte lines of its rows:
//
//   16 bytes of row g at k-byte offset 128*(step/2) + 32*q + 16*(step%2):   x | y | z | w   (32-bit words)
//   mma 0: A = {x(g), x(g+8), y(g), y(g+8)}  B = {x(token), y(token)}
//   mma 1: A = {z(g), z(g+8), w(g), w(g+8)}  B = {z(token), w(token)}
//
// bf16 m16n8k16: word = 2 elements, slots {2q, 2q+1} | {2q+8, 2q+9}; fp8 m16n8k32: word = 4 elements, slots
// {4q..4q+3} | {16+4q..}. Either way one step of a warp covers 64 bytes of every one of its 16 rows.
// FP8 sums each 128-wide k block separately and adds it scaled by w_scale(row block, kb) * a_scale(token, kb).
#include "kernels/gemm/small_m.hpp"

#include "kernels/core/dot.cuh"
#include "kernels/core/launch.hpp"
#include "kernels/core/pdl.cuh"
#include "kernels/core/vec.cuh"

#include <cstdint>
#include <stdexcept>
#include <string>

namespace troupe::kernels::small_m {
namespace {

constexpr int kWarps = kRowsPerBlock / 16;
constexpr int kThreads = kWarps * 32;
constexpr int kPad = 16;   // smem row padding: tokens g and g+1 (one quarter-warp) land on disjoint banks
// 16-byte loads per weight row and thread issued before the first mma. 8 took 118 registers (4 blocks per SM: R1's
// o_proj, 896 blocks, ran 1.7 waves, 39.5 us); 4 with a 7-block register cap measured 37.2 us (ncu, H200,
// docs/BENCHMARKS.md). TROUPE_SMALL_M_BATCH=8: the old batch (A/B).
constexpr int kBatchWide = 8, kBatchNarrow = 4;

struct Args {
  const std::uint8_t* a;
  const float* a_scale;
  const std::uint8_t* w;
  const float* w_scale;
  void* c;
  bool out_f32, accumulate;
  int m, n, k, kb_per, splits;
  float* partials;
  unsigned* counters;
  bool evict_first;  // the weights' L2 policy (dot.cuh); TROUPE_SMALL_M_EVICT_FIRST=0: evict-normal (A/B)
};

using detail::ld_stream16;  // weights: read once, kept out of L1

__device__ __forceinline__ int step_offset(int step, int q) { return (step >> 1) * 128 + q * 32 + (step & 1) * 16; }

__device__ __forceinline__ void cp_async16(std::uint8_t* dst, const std::uint8_t* src) {
  const unsigned d = static_cast<unsigned>(__cvta_generic_to_shared(dst));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(d), "l"(src));
}

template <bool kFp8>
__device__ __forceinline__ void mma(float* d, std::uint32_t a0, std::uint32_t a1, std::uint32_t a2, std::uint32_t a3,
                                    std::uint32_t b0, std::uint32_t b1) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
  if constexpr (kFp8)
    asm("mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
  else
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
#else
  __trap();  // sm_89+ only (the build targets sm_90a)
#endif
}

__device__ __forceinline__ void store(const Args& g, std::size_t i, float v) {
  detail::store_out(g.c, g.out_f32, g.accumulate, i, v);
}

// Tokens [0, MT) of this block's k range into smem (zeros past m), and for FP8 their scales [kb][token].
// Asynchronous copies: all in flight at once; the caller waits (cp.async.wait_all) after its first loads.
template <bool kFp8, int MT>
__device__ void stage_tokens(const Args& g, int kb0, int nkb, int stride, std::uint8_t* smem, float* a_sc) {
  constexpr int E = kFp8 ? 1 : 2;
  const std::size_t row_bytes = std::size_t(g.k) * E;
  const int vecs = nkb * 128 * E / 16;
  for (int i = threadIdx.x; i < MT * vecs; i += kThreads) {
    const int t = i / vecs, v = i % vecs;
    if (t < g.m)
      cp_async16(smem + t * stride + v * 16, g.a + t * row_bytes + std::size_t(kb0) * 128 * E + v * 16);
    else
      *reinterpret_cast<uint4*>(smem + t * stride + v * 16) = make_uint4(0, 0, 0, 0);
  }
  if constexpr (kFp8) {
    const int kbs = g.k / 128;
    for (int i = threadIdx.x; i < MT * nkb; i += kThreads) {
      const int kb = i / MT, t = i % MT;
      if (t < g.m) {
        const unsigned d = static_cast<unsigned>(__cvta_generic_to_shared(a_sc + i));
        const float* src = g.a_scale + std::size_t(t) * kbs + kb0 + kb;
        asm volatile("cp.async.ca.shared.global [%0], [%1], 4;" ::"r"(d), "l"(src));
      } else {
        a_sc[i] = 0.0f;
      }
    }
  }
}

// The split-K epilogue: partials out, and the last block of the row tile sums all splits in split order.
__device__ void reduce_splits(const Args& g, int tile) {
  __shared__ bool last;
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) last = atomicAdd(&g.counters[tile], 1u) == unsigned(g.splits - 1);
  __syncthreads();
  if (!last) return;
  __threadfence();
  // 4 outputs x 8 splits of loads in flight per thread: the sum is latency-bound, not bandwidth-bound.
  constexpr int kE = 4, kS = 8;
  const int r0 = tile * kRowsPerBlock, rows = min(kRowsPerBlock, g.n - r0), total = g.m * rows;
  for (int i0 = threadIdx.x; i0 < total; i0 += kThreads * kE) {
    float v[kE] = {};
    for (int s0 = 0; s0 < g.splits; s0 += kS) {
      float x[kE][kS];
#pragma unroll
      for (int e = 0; e < kE; ++e)
#pragma unroll
        for (int j = 0; j < kS; ++j) {
          const int i = i0 + e * kThreads, s = s0 + j;
          x[e][j] = i < total && s < g.splits
                        ? __ldcg(g.partials + (std::size_t(s) * g.m + i / rows) * g.n + r0 + i % rows)
                        : 0.0f;
        }
#pragma unroll
      for (int e = 0; e < kE; ++e)
#pragma unroll
        for (int j = 0; j < kS; ++j) v[e] += x[e][j];  // split order: deterministic
    }
#pragma unroll
    for (int e = 0; e < kE; ++e) {
      const int i = i0 + e * kThreads;
      if (i < total) store(g, std::size_t(i / rows) * g.n + r0 + i % rows, v[e]);
    }
  }
  if (threadIdx.x == 0) g.counters[tile] = 0;  // ready for the next call (graph replays included)
}

template <bool kFp8, int NT, int kBatch>
__global__ void __launch_bounds__(kThreads, kBatch == kBatchNarrow ? 7 : 1) small_m_kernel(Args g) {
  extern __shared__ __align__(16) std::uint8_t smem[];
  constexpr int E = kFp8 ? 1 : 2, MT = NT * 8;
  constexpr int SPK = 128 * E / 64;  // warp steps per 128-wide k block
  const int kbs = g.k / 128, tile = blockIdx.x, split = blockIdx.y;
  const int kb0 = split * g.kb_per, nkb = min(g.kb_per, kbs - kb0), steps = nkb * SPK;
  const int stride = g.kb_per * 128 * E + kPad;
  float* a_sc = reinterpret_cast<float*>(smem + MT * stride);

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, gr = lane >> 2, q = lane & 3;
  const int row0 = tile * kRowsPerBlock + warp * 16;
  float acc[NT][4] = {};
  const bool active = row0 < g.n;
  const std::size_t row_bytes = std::size_t(g.k) * E, k_off = std::size_t(kb0) * 128 * E;
  const std::uint8_t* w0 = g.w + std::size_t(min(row0 + gr, g.n - 1)) * row_bytes + k_off;
  const std::uint8_t* w1 = g.w + std::size_t(min(row0 + gr + 8, g.n - 1)) * row_bytes + k_off;
  uint4 ra[kBatch], rb[kBatch];
  const std::uint64_t policy = detail::l2_policy(g.evict_first);
  auto load = [&](int base) {
#pragma unroll
    for (int i = 0; i < kBatch; ++i) {
      const bool in = base + i < steps;
      ra[i] = in ? ld_stream16(w0 + step_offset(base + i, q), policy) : make_uint4(0, 0, 0, 0);
      rb[i] = in ? ld_stream16(w1 + step_offset(base + i, q), policy) : make_uint4(0, 0, 0, 0);
    }
  };
  if (active) load(0);  // the first weights are on their way while the previous kernel ends, the tokens land
  detail::pdl_wait();    // (pdl.cuh: the tokens, partials and counters are only touched from here on)
  detail::pdl_trigger();
  stage_tokens<kFp8, MT>(g, kb0, nkb, stride, smem, a_sc);
  asm volatile("cp.async.wait_all;" ::: "memory");
  __syncthreads();
  if (active) {
    const std::uint8_t* x0 = smem + gr * stride;
    const float* wsc = kFp8 ? g.w_scale + std::size_t(row0 / 128) * kbs + kb0 : nullptr;
    for (int base = 0; base < steps; base += kBatch) {
#pragma unroll
      for (int i = 0; i < kBatch; i += SPK) {  // one 128-wide k block per iteration
        if (base + i >= steps) break;
        float blk[NT][4] = {};
#pragma unroll
        for (int j = 0; j < SPK; ++j) {
          const int off = step_offset(base + i + j, q);
#pragma unroll
          for (int t = 0; t < NT; ++t) {
            const uint4 x = *reinterpret_cast<const uint4*>(x0 + t * 8 * stride + off);
            float* d = kFp8 ? blk[t] : acc[t];
            mma<kFp8>(d, ra[i + j].x, rb[i + j].x, ra[i + j].y, rb[i + j].y, x.x, x.y);
            mma<kFp8>(d, ra[i + j].z, rb[i + j].z, ra[i + j].w, rb[i + j].w, x.z, x.w);
          }
        }
        if constexpr (kFp8) {
          const int kb = (base + i) / SPK;
          const float ws = wsc[kb];
#pragma unroll
          for (int t = 0; t < NT; ++t) {
            const float s0 = ws * a_sc[kb * MT + 8 * t + 2 * q], s1 = ws * a_sc[kb * MT + 8 * t + 2 * q + 1];
            acc[t][0] += blk[t][0] * s0, acc[t][1] += blk[t][1] * s1;
            acc[t][2] += blk[t][2] * s0, acc[t][3] += blk[t][3] * s1;
          }
        }
      }
      if (base + kBatch < steps) load(base + kBatch);
    }
  }
  // Fragment: acc[t][2h + b] is weight row row0 + gr + 8h, token 8t + 2q + b.
  float* part = g.splits > 1 ? g.partials + std::size_t(split) * g.m * g.n : nullptr;
#pragma unroll
  for (int t = 0; t < NT; ++t)
#pragma unroll
    for (int h = 0; h < 2; ++h)
#pragma unroll
      for (int b = 0; b < 2; ++b) {
        const int token = 8 * t + 2 * q + b, row = row0 + gr + 8 * h;
        if (token >= g.m || row >= g.n) continue;
        const std::size_t i = std::size_t(token) * g.n + row;
        if (part)
          part[i] = acc[t][2 * h + b];
        else
          store(g, i, acc[t][2 * h + b]);
      }
  if (part) reduce_splits(g, tile);
}

template <bool kFp8>
void launch(const Args& g, const Plan& p, cudaStream_t s) {
  constexpr int E = kFp8 ? 1 : 2;
  const int mt = g.m <= 8 ? 8 : 16;
  const std::size_t smem = std::size_t(mt) * (p.kb_per * 128 * E + kPad) + (kFp8 ? p.kb_per * mt * 4 : 0);
  const dim3 grid(p.tiles, p.splits);
  static const bool wide = env_is("TROUPE_SMALL_M_BATCH", "8");
  auto* kernel = mt == 8 ? (wide ? small_m_kernel<kFp8, 1, kBatchWide> : small_m_kernel<kFp8, 1, kBatchNarrow>)
                         : (wide ? small_m_kernel<kFp8, 2, kBatchWide> : small_m_kernel<kFp8, 2, kBatchNarrow>);
  launch_pdl(kernel, grid, dim3(kThreads), smem, s, "small-m GEMM launch", g);
}

Args args(const void* a, const void* w, void* c, int m, int n, int k, const Plan& p, const Workspace& ws) {
  if (!p.ok) throw std::logic_error("small-m GEMM called without a valid plan");
  Args g{};
  g.a = static_cast<const std::uint8_t*>(a);
  g.w = static_cast<const std::uint8_t*>(w);
  g.c = c;
  g.m = m, g.n = n, g.k = k, g.kb_per = p.kb_per, g.splits = p.splits;
  g.partials = ws.partials;
  g.counters = ws.counters;
  static const bool evict_first = !env_is("TROUPE_SMALL_M_EVICT_FIRST", "0");
  g.evict_first = evict_first;
  return g;
}

}  // namespace

void fp8(const __nv_fp8_e4m3* a, const float* a_scale, const __nv_fp8_e4m3* w, const float* w_scale,
         __nv_bfloat16* c, int m, int n, int k, const Plan& p, const Workspace& ws, cudaStream_t s) {
  Args g = args(a, w, c, m, n, k, p, ws);
  g.a_scale = a_scale;
  g.w_scale = w_scale;
  launch<true>(g, p, s);
}

void bf16(const __nv_bfloat16* a, const __nv_bfloat16* w, void* c, bool out_f32, bool accumulate, int m, int n,
          int k, const Plan& p, const Workspace& ws, cudaStream_t s) {
  Args g = args(a, w, c, m, n, k, p, ws);
  g.out_f32 = out_f32;
  g.accumulate = accumulate;
  launch<false>(g, p, s);
}

}  // namespace troupe::kernels::small_m
