#pragma once
// The grouped expert GEMM: one CTA = (M tile of one expert's entries, N tile of its weights), 4 warps,
// bf16 mma.sync m16n8k16, a cp.async pipeline over k tiles of 128 (one FP8 scale block).
//
//   GATE_UP: h[p, j] = silu(x[t(p)] . W_gate[j]) * (x[t(p)] . W_up[j])   B tile rows: [gate j0.. | up j0..]
//   down:    out[t(p), j] += weight(p) * (h[p] . W2[j])                  (float atomics: several experts per token)
//   SPLITK (GATE_UP, decode): CTAs (.., .., z) take k tiles [z * per, (z + 1) * per) and add raw gate/up sums
//   into a float buffer; silu_mul_kernel finishes h. A token on 8 experts otherwise leaves most SMs idle.
//
// Prefill batches use moe_prefill.cuh's larger tiles; the BM 64 x 64 prefill tiles here remain for A/B timings
// (TROUPE_MOE_LEGACY_PREFILL=1).
// Warps split N (prefill tiles, and the decode down GEMM whose K is short) or K (decode gate/up tiles, BM 16 x 16
// columns: too few columns to give each warp its own; the 4 partial sums are added through shared memory).
// FP8 weights: e4m3 -> bf16 is exact, so the mma sees exactly the checkpoint's values; the 128x128 block scale
// multiplies each k tile's partial sum (one scale per n8 tile and k tile), as DeepSeek's own kernels do.
// Fragment layouts: see kernels/mla/mla_fast.cuh (g = lane / 4, c = lane % 4).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <cstdint>

#include "kernels/core/mma.cuh"
#include <type_traits>

namespace troupe::kernels::moe_detail {

constexpr int kGemmThreads = 128, kBK = 128;

struct GemmArgs {
  const __nv_bfloat16* a_src;  // x [n, hidden] (GATE_UP) or h [entries, inter] (down)
  const void* w;               // w13 or w2, all experts
  const float* scale;          // w13_scale or w2_scale (FP8)
  int N, K, inter;             // N: output columns (inter or hidden); K: hidden or inter
  int scale_nb, scale_kb;      // per expert: scale row blocks, k blocks
  int up_block0;               // GATE_UP: first scale row block of the up rows (ceil(inter / 128))
  const std::int32_t* perm;
  const int4* tiles;
  const int* num_tiles;
  int top_k;
  __nv_bfloat16* h;
  float* gate_up;  // split-K GATE_UP: float [entries, 2 * inter] partial sums (zeroed), finished by silu_mul_kernel
  int ktiles_per_split;
  float* out;
  const float* topk_weights;
  int n_fastest;  // moe_prefill.cuh: grid x walks N tiles (the CTAs of one M tile run together), y the M tiles
};


__device__ __forceinline__ std::uint32_t ld32(const void* p) { return *reinterpret_cast<const std::uint32_t*>(p); }

// Two e4m3 bytes -> two bf16 in one register (exact: every e4m3 value is a bf16 value).
__device__ __forceinline__ std::uint32_t fp8x2_to_bf16x2(const unsigned char* p) {
  const __nv_fp8x2_storage_t v = *reinterpret_cast<const __nv_fp8x2_storage_t*>(p);
  const __half2 h = __half2(__nv_cvt_fp8x2_to_halfraw2(v, __NV_E4M3));
  const __nv_bfloat162 b = __float22bfloat162_rn(__half22float2(h));
  return *reinterpret_cast<const std::uint32_t*>(&b);
}

template <int BM, int BN, int WK, bool FP8, bool GATE_UP, int STAGES>
struct GemmCfg {
  static constexpr int WN = 4 / WK, MT = BM / 16, NT = BN / 8 / WN, KSTEPS = 8 / WK;
  static constexpr int A_LD = kBK + 8;              // bf16 elements; +16 bytes keeps fragment loads conflict-free
  static constexpr int B_LD = FP8 ? kBK + 16 : kBK + 8;  // elements (bytes for FP8)
  using BT = std::conditional_t<FP8, unsigned char, __nv_bfloat16>;
  static constexpr int A_BYTES = BM * A_LD * 2, B_BYTES = BN * B_LD * int(sizeof(BT));
  static constexpr int RED_BYTES = (WK - 1) * MT * NT * 4 * 32 * 4;
  static constexpr int PIPE_BYTES = STAGES * (A_BYTES + B_BYTES);
  static constexpr int SMEM = PIPE_BYTES > RED_BYTES ? PIPE_BYTES : RED_BYTES;
  static_assert(NT >= 1 && (!GATE_UP || NT % 2 == 0), "gate and up n8 tiles pair up inside a warp");
  // B tile row of warp-local n8 tile j (GATE_UP: the first NT/2 are gate, the rest the matching up tiles).
  __device__ static int btile(int wn, int j) {
    if (!GATE_UP) return wn * NT + j;
    return j < NT / 2 ? wn * (NT / 2) + j : BN / 16 + wn * (NT / 2) + (j - NT / 2);
  }
};

// One CTA's work, split into its phases. The fields are the CTA's tile, thread coordinates and the row tables
// the kernel put in shared memory.
template <int BM, int BN, int WK, bool FP8, bool GATE_UP, int STAGES, bool SPLITK>
struct GemmCta {
  using C = GemmCfg<BM, BN, WK, FP8, GATE_UP, STAGES>;
  using BT = typename C::BT;
  using Acc = float[C::MT][C::NT][4];
  const GemmArgs& a;
  unsigned char* smem;
  const __nv_bfloat16* const* arow;  // [BM] source row of each A row (null past `rows`)
  const BT* const* brow;             // [BN] weight row of each B row (null past N)
  const int* entry;                  // [BM] flat (token, choice) entry of each A row
  int e, p0, rows, n0, tid, lane, g, c, wk, wn;

  __device__ __nv_bfloat16* As(int st, int r, int k) const {
    return reinterpret_cast<__nv_bfloat16*>(smem + st * C::A_BYTES) + r * C::A_LD + k;
  }
  __device__ BT* Bs(int st, int r, int k) const {
    return reinterpret_cast<BT*>(smem + STAGES * C::A_BYTES + st * C::B_BYTES) + r * C::B_LD + k;
  }

  // A rows past the tile's `rows` stay zero in every stage: written once here, never copied (a decode tile
  // holds one or two real rows of its 16, and copying zeros would cost as much as the weights).
  __device__ void zero_unused_rows() const {
    for (int i = tid; i < STAGES * (BM - rows) * 16; i += kGemmThreads) {
      const int st = i / ((BM - rows) * 16), rem = i % ((BM - rows) * 16);
      *reinterpret_cast<uint4*>(As(st, rows + rem / 16, (rem % 16) * 8)) = make_uint4(0, 0, 0, 0);
    }
  }

  __device__ void load(int st, int kt) const {
    const int k0 = kt * kBK;
    for (int i = tid; i < rows * 16; i += kGemmThreads) {
      const int r = i / 16, k = k0 + (i % 16) * 8;
      const bool ok = k < a.K;
      detail::cp_async16(As(st, r, k - k0), ok ? arow[r] + k : a.a_src, ok);
    }
    constexpr int kPer = 16 / int(sizeof(BT));  // elements per 16-byte chunk
    for (int i = tid; i < BN * (kBK / kPer); i += kGemmThreads) {
      const int r = i / (kBK / kPer), k = k0 + (i % (kBK / kPer)) * kPer;
      const bool ok = brow[r] != nullptr && k < a.K;
      detail::cp_async16(Bs(st, r, k - k0), ok ? brow[r] + k : static_cast<const BT*>(a.w), ok);
    }
  }

  // This warp's k16 steps of stage st into acc (bf16) or part (FP8: scaled per k tile by scale_partial).
  __device__ void mma_stage(int st, Acc& acc, Acc& part) const {
#pragma unroll
    for (int ks = 0; ks < C::KSTEPS; ++ks) {
      const int kk = (wk * C::KSTEPS + ks) * 16;
      std::uint32_t af[C::MT][4];
#pragma unroll
      for (int mt = 0; mt < C::MT; ++mt) {
        af[mt][0] = ld32(As(st, mt * 16 + g, kk + 2 * c));
        af[mt][1] = ld32(As(st, mt * 16 + g + 8, kk + 2 * c));
        af[mt][2] = ld32(As(st, mt * 16 + g, kk + 8 + 2 * c));
        af[mt][3] = ld32(As(st, mt * 16 + g + 8, kk + 8 + 2 * c));
      }
#pragma unroll
      for (int j = 0; j < C::NT; ++j) {
        const int n = C::btile(wn, j) * 8 + g;
        std::uint32_t b0, b1;
        if constexpr (FP8) {
          b0 = fp8x2_to_bf16x2(Bs(st, n, kk + 2 * c));
          b1 = fp8x2_to_bf16x2(Bs(st, n, kk + 8 + 2 * c));
        } else {
          b0 = ld32(Bs(st, n, kk + 2 * c));
          b1 = ld32(Bs(st, n, kk + 8 + 2 * c));
        }
#pragma unroll
        for (int mt = 0; mt < C::MT; ++mt) detail::mma16816(FP8 ? part[mt][j] : acc[mt][j], af[mt], b0, b1);
      }
    }
  }

  // acc += (the n8 tile's 128x128 block scale for k tile kt) * part; part = 0.
  __device__ void scale_partial(int kt, Acc& acc, Acc& part) const {
#pragma unroll
    for (int j = 0; j < C::NT; ++j) {
      const int rb = C::btile(wn, j) * 8;  // B tile row of this n8 tile
      const bool up = GATE_UP && rb >= BN / 2;
      const int col = n0 + (up ? rb - BN / 2 : rb);
      const int blk = (up ? a.up_block0 : 0) + col / 128;
      const float sc = col < a.N ? a.scale[(std::size_t(e) * a.scale_nb + blk) * a.scale_kb + kt] : 0.f;
#pragma unroll
      for (int mt = 0; mt < C::MT; ++mt)
#pragma unroll
        for (int i = 0; i < 4; ++i) acc[mt][j][i] += sc * part[mt][j][i], part[mt][j][i] = 0.f;
    }
  }

  // The cp.async pipeline over k tiles [kt0, kt1): all of them, or this CTA's share of a split-K GATE_UP.
  __device__ void mainloop(Acc& acc) const {
    Acc part = {};
    const int ktiles_all = (a.K + kBK - 1) / kBK;
    const int kt0 = SPLITK ? blockIdx.z * a.ktiles_per_split : 0;
    const int kt1 = SPLITK ? min(ktiles_all, kt0 + a.ktiles_per_split) : ktiles_all;
    const int ktiles = max(0, kt1 - kt0);
#pragma unroll
    for (int st = 0; st < STAGES - 1; ++st) {
      if (st < ktiles) load(st, kt0 + st);
      detail::cp_async_commit();
    }
    for (int it = 0; it < ktiles; ++it) {
      detail::cp_async_wait<STAGES - 2>();
      __syncthreads();  // stage `it` landed for every thread; stage it - 1 is free to refill
      if (it + STAGES - 1 < ktiles) load((it + STAGES - 1) % STAGES, kt0 + it + STAGES - 1);
      detail::cp_async_commit();
      mma_stage(it % STAGES, acc, part);
      if constexpr (FP8) scale_partial(kt0 + it, acc, part);
    }
    detail::cp_async_wait<0>();
    __syncthreads();
  }

  // Adds the K-split partial sums of warps 1..WK-1 into warp 0's; false for the warps that are then done.
  __device__ bool reduce_k(Acc& acc) const {
    if constexpr (WK > 1) {
      float* red = reinterpret_cast<float*>(smem);  // the pipeline's buffers are free now
      constexpr int kFrag = C::MT * C::NT * 4;
      if (wk > 0) {
#pragma unroll
        for (int mt = 0; mt < C::MT; ++mt)
#pragma unroll
          for (int j = 0; j < C::NT; ++j)
#pragma unroll
            for (int i = 0; i < 4; ++i) red[((wk - 1) * kFrag + (mt * C::NT + j) * 4 + i) * 32 + lane] = acc[mt][j][i];
      }
      __syncthreads();
      if (wk > 0) return false;
#pragma unroll
      for (int w = 0; w < WK - 1; ++w)
#pragma unroll
        for (int mt = 0; mt < C::MT; ++mt)
#pragma unroll
          for (int j = 0; j < C::NT; ++j)
#pragma unroll
            for (int i = 0; i < 4; ++i) acc[mt][j][i] += red[(w * kFrag + (mt * C::NT + j) * 4 + i) * 32 + lane];
    }
    return true;
  }

  // Row r of m tile mt: split-K partial gate/up sums, h = silu(gate) * up, or the weighted down output.
  __device__ void store_row(const Acc& acc, int mt, int half, int r) const {
    if constexpr (GATE_UP) {
#pragma unroll
      for (int j = 0; j < C::NT / 2; ++j) {
        const int col = n0 + (wn * (C::NT / 2) + j) * 8 + 2 * c;
        if (col >= a.N) continue;
        const float g0 = acc[mt][j][2 * half], g1 = acc[mt][j][2 * half + 1];
        const float u0 = acc[mt][j + C::NT / 2][2 * half], u1 = acc[mt][j + C::NT / 2][2 * half + 1];
        if constexpr (SPLITK) {
          float* dst = a.gate_up + std::size_t(p0 + r) * 2 * a.inter;
          atomicAdd(reinterpret_cast<float2*>(dst + col), make_float2(g0, g1));
          atomicAdd(reinterpret_cast<float2*>(dst + a.inter + col), make_float2(u0, u1));
        } else {
          const float h0 = g0 / (1.f + expf(-g0)) * u0, h1 = g1 / (1.f + expf(-g1)) * u1;
          *reinterpret_cast<__nv_bfloat162*>(a.h + std::size_t(p0 + r) * a.N + col) = __floats2bfloat162_rn(h0, h1);
        }
      }
    } else {
      const int ent = entry[r];
      const float wt = a.topk_weights[ent];
      float* dst = a.out + std::size_t(ent / a.top_k) * a.N;
#pragma unroll
      for (int j = 0; j < C::NT; ++j) {
        const int col = n0 + (wn * C::NT + j) * 8 + 2 * c;
        if (col >= a.N) continue;
        atomicAdd(reinterpret_cast<float2*>(dst + col), make_float2(wt * acc[mt][j][2 * half], wt * acc[mt][j][2 * half + 1]));
      }
    }
  }

  __device__ void epilogue(const Acc& acc) const {
#pragma unroll
    for (int mt = 0; mt < C::MT; ++mt)
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const int r = mt * 16 + g + 8 * half;
        if (r < rows) store_row(acc, mt, half, r);
      }
  }
};

template <int BM, int BN, int WK, bool FP8, bool GATE_UP, int STAGES, bool SPLITK>
__global__ void __launch_bounds__(kGemmThreads) moe_gemm_kernel(GemmArgs a) {
  using Cta = GemmCta<BM, BN, WK, FP8, GATE_UP, STAGES, SPLITK>;
  using BT = typename Cta::BT;
  if (blockIdx.x >= *a.num_tiles) return;  // the grid is sized for the worst case
  extern __shared__ __align__(16) unsigned char smem[];
  __shared__ const __nv_bfloat16* arow[BM];
  __shared__ const BT* brow[BN];
  __shared__ int entry[BM];
  const int4 tile = a.tiles[blockIdx.x];  // {expert, first perm index, rows}
  const int e = tile.x, p0 = tile.y, rows = tile.z;
  const int n0 = blockIdx.y * (GATE_UP ? BN / 2 : BN);
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  if (tid < BM) {
    const int p = p0 + tid;
    const int ent = tid < rows ? a.perm[p] : -1;
    entry[tid] = ent;
    arow[tid] = ent < 0 ? nullptr
                        : a.a_src + (GATE_UP ? std::size_t(ent / a.top_k) * a.K : std::size_t(p) * a.K);
  }
  if (tid < BN) {
    const int col = GATE_UP ? n0 + tid % (BN / 2) : n0 + tid;
    const long wrow = GATE_UP && tid >= BN / 2 ? long(a.inter) + col : col;
    const long rows_per_expert = GATE_UP ? 2L * a.inter : a.N;
    brow[tid] = col < a.N ? static_cast<const BT*>(a.w) + (e * rows_per_expert + wrow) * a.K : nullptr;
  }
  const Cta cta{a, smem, arow, brow, entry, e, p0, rows, n0, tid, lane, lane / 4, lane % 4,
                warp / Cta::C::WN, warp % Cta::C::WN};
  cta.zero_unused_rows();
  __syncthreads();
  typename Cta::Acc acc = {};
  cta.mainloop(acc);
  if (!cta.reduce_k(acc)) return;
  cta.epilogue(acc);
}

// h = silu(gate) * up from the split-K partial sums; rows past the device-side entry count are never read.
__global__ void silu_mul_kernel(const float* gate_up, int entries, int inter, __nv_bfloat16* h) {
  const std::size_t total = std::size_t(entries) * inter;
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < total;
       i += std::size_t(gridDim.x) * blockDim.x) {
    const std::size_t p = i / inter, j = i % inter;
    const float g = gate_up[p * 2 * inter + j], u = gate_up[p * 2 * inter + inter + j];
    h[i] = __float2bfloat16(g / (1.f + expf(-g)) * u);
  }
}

}  // namespace troupe::kernels::moe_detail
