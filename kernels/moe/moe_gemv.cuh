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
// FP8 experts' down GEMV usually runs as gemv_down_flat_kernel instead (one block per SM, f16x2 dots; below), their
// gate/up GEMV at one token as gemv_gate_up_flat_kernel (moe_gate_up_flat.cuh).
// FP8 rows: chunk c of 16 bytes lies inside one 128-wide k block, so each chunk's partial dot is multiplied by its
// block scale (scale [e, row / 128, c * 16 / 128]). bf16 rows: chunks of 8 elements, no scale. Each out[t, j] is
// summed by one warp (or, flat, by one thread in entry order), so the down GEMV adds without atomics
// (deterministic, unlike the tiled path).
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
  // One token (n = 1): its last always_on slots are experts num_experts - always_on + s whatever the routing
  // (MoeRouting's packed shared experts); the gate/up GEMV runs them first, before its programmatic wait.
  int always_on = 0;
  // The down GEMV's row addressing, 0 for the packed layout above: w2 row j of entry e at e w2_e + j w2_j elements,
  // its scales at e s2_e + (j / 128) s2_j. gemv_fp8_flat_residual (moe.hpp) sets them to cut one weight's k range
  // into slices that the flat kernel takes for experts.
  std::size_t w2_e = 0, w2_j = 0;
  int s2_e = 0, s2_j = 0;
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
    // FP8: ld_nc16, measured (dot.cuh); bf16 rows keep __ldg (not measured against it)
    const uint4 va = FP8 ? detail::ld_nc16(wa + c) : __ldg(wa + c);
    const uint4 vb = FP8 ? detail::ld_nc16(wb + c) : __ldg(wb + c);
    const float da = chunk_dot<FP8>(va, xs + c * kPer), db = chunk_dot<FP8>(vb, xs + c * kPer);
    if constexpr (FP8) {
      acc.x = fmaf(scale_a[c * kPer / 128], da, acc.x), acc.y = fmaf(scale_b[c * kPer / 128], db, acc.y);
    } else {
      acc.x += da, acc.y += db;
    }
  }
  return acc;
}

// grid (ceil(inter / kGemvWarps), n * top_k). With always_on (one token), block row y runs slot (y + top_k -
// always_on) % top_k: the always-on slots come first, so their blocks are the ones resident while moe_route runs,
// and their experts are known without its ids: they compute before the programmatic wait. x is complete then
// (moe_route passed its own wait on the router GEMV, which waited for the norm that wrote x; pdl.cuh), and h is
// written only after the wait.
template <bool FP8>
__global__ void __launch_bounds__(kGemvWarps * 32) gemv_gate_up_kernel(GemvArgs a) {
  const int S = gridDim.y == unsigned(a.top_k) ? a.always_on : 0;
  const int p = S ? (int(blockIdx.y) + a.top_k - S) % a.top_k : int(blockIdx.y);
  const bool early = p >= a.top_k - S;
  if (!early) detail::pdl_wait();  // the ids and x come from the kernels before (pdl.cuh)
  const int e = early ? a.num_experts - S + (p - (a.top_k - S)) : a.topk_ids[p];
  const int lane = threadIdx.x % 32, i = blockIdx.x * kGemvWarps + threadIdx.x / 32;
  if (e < 0 || e >= a.num_experts || i >= a.inter) {  // skipped ids leave h unread
    if (early) detail::pdl_wait();
    detail::pdl_trigger();
    return;
  }
  if (!early) detail::pdl_trigger();
  const __nv_bfloat16* xs = a.x + std::size_t(p / a.top_k) * a.hidden;
  const std::size_t esz = FP8 ? 1 : 2, rows = std::size_t(2) * a.inter;
  const auto* base = static_cast<const unsigned char*>(a.w13) + std::size_t(e) * rows * a.hidden * esz;
  const int kb = (a.hidden + 127) / 128, ib = (a.inter + 127) / 128;
  const float* sg = FP8 ? a.w13_scale + (std::size_t(e) * 2 * ib + i / 128) * kb : nullptr;
  const float* su = FP8 ? a.w13_scale + (std::size_t(e) * 2 * ib + ib + i / 128) * kb : nullptr;
  const float2 gu = row_dot2<FP8>(base + std::size_t(i) * a.hidden * esz,
                                  base + (std::size_t(a.inter) + i) * a.hidden * esz, xs, a.hidden, sg, su, lane);
  const float g = warp_sum(gu.x), u = warp_sum(gu.y);
  if (early) {
    detail::pdl_wait();
    detail::pdl_trigger();
  }
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

// The FP8 down GEMV over one block per SM: 512 threads with G = 2 items per warp and round, or 768 with G = 1 and
// three rounds in flight for rows of 4 chunks per lane (R1; run_down_flat says why). gemv_down_kernel's 896 blocks
// of 8 warps run 1.7 waves on the H200, each block staging h before its first weight load: 52 us for R1's 132 MB,
// where a plain streaming read of 132 MB takes 39 (troupe_kernel_bench hbm_stream). Block b owns the output rows
// [b H / B, (b + 1) H / B) of token blockIdx.y (even to ~2%: ~490 items per SM on R1), its warps walk the (row,
// expert) items of them:
//
//   item i = (row r0 + i / top_k, entry i % top_k)    warp w: items w, w + W, ..., G per round, SETS rounds'
//   part[i] = h[entry] . W2[e][row] (whole warp)      weights in flight (SETS register sets taking turns)
//   out[row] += sum over entries, in entry order, of weight(entry) * part[row, entry]   (deterministic)
//
// The dots run in f16x2 (dot.cuh's dot_fp8x16_f16: ~25 instructions per 16-byte chunk instead of ~60) against h
// staged once per block as f16 x 2^-8, after the first two rounds' weights are on their way. Lane l reads chunks
// l, l + 32, ... (CPL of them, the last predicated) of an item's row. Each entry's h row lies as two planes, the
// first and the second 8 values of every 16-value chunk, so that a warp's 16-byte reads of one plane hit distinct
// banks (interleaved, lane l read bytes 32 l and 32 l + 16: ncu counted 1.85 M bank conflicts in 4.1 M
// shared-memory wavefronts of the R1 kernel).
constexpr int kFlatThreads = 512, kFlatItems = 2, kFlatWideThreads = 768;  // wide: moe_experts.cu's run_down_flat
template <int CPL, int THREADS = kFlatThreads, int G = kFlatItems, int SETS = 2>
__global__ void __launch_bounds__(THREADS, 1) gemv_down_flat_kernel(GemvArgs a) {
  extern __shared__ __align__(16) unsigned char gemv_smem[];
  auto* h16 = reinterpret_cast<uint4*>(gemv_smem);  // 8 f16 per uint4
  float* part = reinterpret_cast<float*>(gemv_smem + (std::size_t(a.top_k) * a.inter * 2 + 15) / 16 * 16);
  const int t = blockIdx.y, B = gridDim.x;
  const int r0 = int(std::int64_t(blockIdx.x) * a.hidden / B), r1 = int(std::int64_t(blockIdx.x + 1) * a.hidden / B);
  const int items = (r1 - r0) * a.top_k, W = blockDim.x / 32;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, chunks = a.inter / 16;
  const int ib = (a.inter + 127) / 128, hb = (a.hidden + 127) / 128;
  const auto* w2 = static_cast<const unsigned char*>(a.w2);
  const std::int32_t* ids = a.topk_ids + t * a.top_k;
  struct Item {
    const unsigned char* row;  // null: past the end, or a skipped expert id
    const float* scale;
    int entry;
  };
  auto item = [&](int i) {
    Item it{nullptr, nullptr, 0};
    if (i >= items) return it;
    const int j = r0 + i / a.top_k, e = ids[i % a.top_k];
    it.entry = i % a.top_k;
    if (e < 0 || e >= a.num_experts) return it;
    const std::size_t w2_e = a.w2_e ? a.w2_e : std::size_t(a.hidden) * a.inter, w2_j = a.w2_j ? a.w2_j : a.inter;
    const int s2_e = a.s2_e ? a.s2_e : hb * ib, s2_j = a.s2_j ? a.s2_j : ib;
    it.row = w2 + std::size_t(e) * w2_e + std::size_t(j) * w2_j;
    it.scale = a.w2_scale + std::size_t(e) * s2_e + std::size_t(j / 128) * s2_j;
    return it;
  };
  auto load = [&](const Item (&it)[G], uint4 (&v)[G][CPL]) {
#pragma unroll
    for (int g = 0; g < G; ++g)
#pragma unroll
      for (int u = 0; u < CPL; ++u) {
        const int c = lane + 32 * u;
        v[g][u] = it[g].row && c < chunks ? detail::ld_stream16(it[g].row + std::size_t(c) * 16)
                                          : make_uint4(0, 0, 0, 0);
      }
  };
  // This round's dots (items i0 + W g) into part.
  auto consume = [&](const Item (&cur)[G], const uint4 (&v)[G][CPL], int i0) {
#pragma unroll
    for (int g = 0; g < G; ++g) {
      float d = 0.f;
      if (cur[g].row) {
        const uint4* hrow = h16 + std::size_t(cur[g].entry) * a.inter / 8;
#pragma unroll
        for (int u = 0; u < CPL; ++u) {
          const int c = lane + 32 * u;
          if (c >= chunks) break;
          d = fmaf(__ldg(cur[g].scale + c / 8), detail::dot_fp8x16_f16(v[g][u], hrow[c], hrow[chunks + c]), d);
        }
      }
      d = warp_sum(d);
      if (lane == 0 && i0 + W * g < items) part[i0 + W * g] = d * (1.f / detail::kF16XScale);
    }
  };
  auto next = [&](Item (&it)[G], uint4 (&v)[G][CPL], int i0) {
#pragma unroll
    for (int g = 0; g < G; ++g) it[g] = item(i0 + W * g);
    load(it, v);
  };
  // SETS rounds in flight, in as many register sets that take turns (a round's set is refilled SETS rounds ahead
  // right after its dots; copying the next round's registers into the current ones stalled each round until the
  // next round had arrived). The ids were complete before the gate/up GEMV's own wait returned (pdl.cuh): the first
  // rounds' rows stream in while that kernel ends.
  const int R = W * G;
  Item cur[SETS][G];
  uint4 val[SETS][G][CPL];
#pragma unroll
  for (int k = 0; k < SETS; ++k) next(cur[k], val[k], warp + k * R);
  detail::pdl_wait();  // h comes from the gate/up GEMV
  detail::pdl_trigger();
  const uint4* src = reinterpret_cast<const uint4*>(a.h + std::size_t(t) * a.top_k * a.inter);
  for (int i = threadIdx.x; i < a.top_k * a.inter / 8; i += blockDim.x) {
    const int row = i / (a.inter / 8), r = i % (a.inter / 8);  // -> plane r % 2, chunk r / 2 of the entry's row
    h16[std::size_t(row) * a.inter / 8 + (r % 2) * chunks + r / 2] = detail::f16_scaled8(src[i]);
  }
  __syncthreads();
  for (int i0 = warp; i0 < items; i0 += SETS * R) {
#pragma unroll
    for (int k = 0; k < SETS; ++k) {
      if (i0 + k * R >= items) break;
      consume(cur[k], val[k], i0 + k * R);
      next(cur[k], val[k], i0 + (k + SETS) * R);
    }
  }
  __syncthreads();
  for (int r = threadIdx.x; r < r1 - r0; r += blockDim.x) {
    float acc = 0.f;
    for (int k = 0; k < a.top_k; ++k) {
      const int e = ids[k];
      if (e >= 0 && e < a.num_experts) acc += a.topk_weights[t * a.top_k + k] * part[r * a.top_k + k];
    }
    a.out[std::size_t(t) * a.hidden + r0 + r] += acc;
  }
}

}  // namespace troupe::kernels::moe_detail
