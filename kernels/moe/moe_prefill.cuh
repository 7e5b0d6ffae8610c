#pragma once
// The prefill grouped expert GEMM: the same work items as moe_gemm.cuh ((M tile of one expert's entries, N tile
// of its weights), GemmArgs, the same outputs), on larger tiles: BM (128 or 64) x BN (256 or 128) B rows per
// CTA, 8 warps (2 along M x 4 along N, warp tile BM/2 x BN/4), k tiles of 64 in a cp.async ring (4 stages and
// one CTA per SM at BN 256, 3 stages and two CTAs at BN 128), fragments through ldmatrix from XOR-swizzled
// shared memory, bf16 mma.sync m16n8k16. BN 128 is the default: BN 256 halves the B-fragment reads per mma
// but its single CTA per SM measured 10% slower on the H200 (docs/BENCHMARKS.md, "MoE prefill GEMMs").
// Grid order (n_fastest, the default): the N tiles of one M tile run side by side, so its gathered A rows (x or
// h, which need not fit in L2: R1's x is 58 MB, V2-Lite's h 69 MB) are fetched from HBM once; an expert's few
// M tiles stay close enough in launch order to share its weight tiles through L2 (measured within 1% of the
// M-fastest order).
//
//   B tile rows (BN):   GATE_UP  [gate n0 .. n0+BN/2-1 | up n0 .. n0+BN/2-1]   (h columns n0 .. n0+BN/2-1)
//                       down     [W2 rows n0 .. n0+BN-1]
//   warp wn's n8 tiles j = 0..NT-1 (NT = BN/32): GATE_UP gate rows wn*BN/8 + 8j (j < NT/2) and the up rows
//                       BN/2 + wn*BN/8 + 8(j - NT/2): gate j pairs with up j + NT/2 in the same thread, so
//                       SiLU(gate) * up happens in registers; down: rows wn*BN/4 + 8j.
//
// Shared memory rows are 64 bf16 = 8 chunks of 16 bytes; chunk q of row r lives at chunk q ^ (r & 7), so the 8
// rows an ldmatrix phase reads hit 8 different bank groups.
// FP8 weights land as raw bytes and are widened once per stage into a bf16 tile shared by all warps (exact: every
// e4m3 value is a bf16 value). The 128x128 block scales: a warp's n8 tiles lie in one scale row block for gate
// (or down) and one for up, so the accumulators are kept in units of the current k block's scale s_b and
// rescaled by s_b / s_{b+1} when the k block changes (times s_last at the end): exact up to float rounding, with
// no second accumulator set.
#include <cuda_bf16.h>
#include <cuda_fp8.h>

#include <cstdint>

#include "kernels/core/mma.cuh"
#include "kernels/moe/moe_gemm.cuh"

namespace troupe::kernels::moe_detail {

constexpr int kPfThreads = 256, kPfBK = 64;
template <int BN>
constexpr int pf_stages() { return BN == 256 ? 4 : 3; }

__device__ __forceinline__ void ldmatrix_x4(std::uint32_t (&r)[4], const void* smem_row) {
  const unsigned a = static_cast<unsigned>(__cvta_generic_to_shared(smem_row));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(a));
}

// Element offset of chunk q (8 bf16) of row r in a swizzled [rows][64] bf16 tile.
__device__ __forceinline__ int swz(int r, int q) { return r * kPfBK + ((q ^ (r & 7)) << 3); }

template <int BM, int BN, bool FP8>
struct PfCfg {
  static constexpr int MT = BM / 32, NT = BN / 32, STAGES = pf_stages<BN>();  // per warp: m16, n8 tiles
  static constexpr int A_BYTES = BM * kPfBK * 2;
  static constexpr int B_BYTES = BN * kPfBK * (FP8 ? 1 : 2);  // a stage as loaded
  static constexpr int W_BYTES = FP8 ? BN * kPfBK * 2 : 0;     // FP8: the current stage widened to bf16
  static constexpr int SMEM = STAGES * (A_BYTES + B_BYTES) + W_BYTES;
};

template <int BM, int BN, bool FP8, bool GATE_UP>
struct PfCta {
  using C = PfCfg<BM, BN, FP8>;
  static constexpr int kPfStages = C::STAGES, kPfBN = BN;
  using BT = std::conditional_t<FP8, unsigned char, __nv_bfloat16>;
  using Acc = float[C::MT][C::NT][4];
  const GemmArgs& a;
  unsigned char* smem;
  const __nv_bfloat16* const* arow;  // [BM] source row of each A row (null past `rows`)
  const BT* const* brow;             // [BN] weight row of each B row (null past N)
  const int* entry;                  // [BM]
  int e, p0, rows, n0, tid, lane, wm, wn;

  __device__ __nv_bfloat16* As(int st) const { return reinterpret_cast<__nv_bfloat16*>(smem + st * C::A_BYTES); }
  __device__ BT* Bs(int st) const {
    return reinterpret_cast<BT*>(smem + kPfStages * C::A_BYTES + st * C::B_BYTES);
  }
  __device__ __nv_bfloat16* Wide() const {
    return reinterpret_cast<__nv_bfloat16*>(smem + kPfStages * (C::A_BYTES + C::B_BYTES));
  }

  __device__ void load(int st, int kt) const {
    const int k0 = kt * kPfBK;
    for (int i = tid; i < BM * 8; i += kPfThreads) {
      const int r = i / 8, q = i % 8, k = k0 + q * 8;
      const bool ok = arow[r] != nullptr && k < a.K;
      detail::cp_async16(As(st) + swz(r, q), ok ? arow[r] + k : a.a_src, ok);
    }
    if constexpr (FP8) {  // raw rows of 64 bytes, unswizzled: only widen() reads them, row by row
      for (int i = tid; i < kPfBN * 4; i += kPfThreads) {
        const int r = i / 4, q = i % 4, k = k0 + q * 16;
        const bool ok = brow[r] != nullptr && k < a.K;
        detail::cp_async16(Bs(st) + r * kPfBK + q * 16, ok ? brow[r] + k : static_cast<const BT*>(a.w), ok);
      }
    } else {
      for (int i = tid; i < kPfBN * 8; i += kPfThreads) {
        const int r = i / 8, q = i % 8, k = k0 + q * 8;
        const bool ok = brow[r] != nullptr && k < a.K;
        detail::cp_async16(Bs(st) + swz(r, q), ok ? brow[r] + k : static_cast<const BT*>(a.w), ok);
      }
    }
  }

  // FP8: the block scale of this warp's gate (up = false; down tiles too) or up n8 tiles at k block kb; 1 past
  // N (those columns are never stored), and never 0, which the rescaling divides by.
  __device__ float warp_scale(bool up, int kb) const {
    const int col = n0 + wn * (GATE_UP ? BN / 8 : BN / 4);
    if (col >= a.N) return 1.f;
    const int blk = (up ? a.up_block0 : 0) + col / 128;
    return fmaxf(a.scale[(std::size_t(e) * a.scale_nb + blk) * a.scale_kb + kb], 1e-30f);
  }
  __device__ void rescale(Acc& acc, float rg, float ru) const {
#pragma unroll
    for (int mt = 0; mt < C::MT; ++mt)
#pragma unroll
      for (int j = 0; j < C::NT; ++j)
#pragma unroll
        for (int i = 0; i < 4; ++i) acc[mt][j][i] *= (GATE_UP && j >= C::NT / 2) ? ru : rg;
  }
  // FP8: this thread's 16-byte chunks of stage st -> bf16 in the widened tile.
  __device__ void widen(int st) const {
#pragma unroll
    for (int u = 0; u < kPfBN * 4 / kPfThreads; ++u) {
      const int i = tid + u * kPfThreads, r = i / 4, q = i % 4;
      const uint4 raw = *reinterpret_cast<const uint4*>(Bs(st) + r * kPfBK + q * 16);
      const unsigned char* b = reinterpret_cast<const unsigned char*>(&raw);
      std::uint32_t o[8];
#pragma unroll
      for (int v = 0; v < 8; ++v) {
        const __half2 h = __half2(__nv_cvt_fp8x2_to_halfraw2(*reinterpret_cast<const __nv_fp8x2_storage_t*>(b + 2 * v),
                                                             __NV_E4M3));
        const float2 f = __half22float2(h);
        o[v] = detail::pack_bf16(f.x, f.y);
      }
      auto* w = reinterpret_cast<__nv_bfloat16*>(Wide());
      *reinterpret_cast<uint4*>(w + swz(r, 2 * q)) = make_uint4(o[0], o[1], o[2], o[3]);
      *reinterpret_cast<uint4*>(w + swz(r, 2 * q + 1)) = make_uint4(o[4], o[5], o[6], o[7]);
    }
  }

  __device__ void mma_tile(const __nv_bfloat16* As_, const __nv_bfloat16* Bw, Acc& acc) const {
#pragma unroll
    for (int ks = 0; ks < kPfBK / 16; ++ks) {
      std::uint32_t af[C::MT][4], bf[C::NT][2];
#pragma unroll
      for (int mt = 0; mt < C::MT; ++mt) {
        const int r = wm * (BM / 2) + mt * 16 + (lane & 15);
        ldmatrix_x4(af[mt], As_ + swz(r, ks * 2 + (lane >> 4)));
      }
#pragma unroll
      for (int pr = 0; pr < C::NT / 2; ++pr) {
        constexpr int kHalfPairs = C::NT / 4;  // GATE_UP: ldmatrix pairs of n8 tiles per gate (or up) half
        const int r0 = GATE_UP ? (pr / kHalfPairs) * (BN / 2) + wn * (BN / 8) + (pr % kHalfPairs) * 16
                               : wn * (BN / 4) + pr * 16;
        const int r = r0 + (lane & 7) + ((lane >> 4) << 3);
        std::uint32_t t[4];
        ldmatrix_x4(t, Bw + swz(r, ks * 2 + ((lane >> 3) & 1)));
        bf[2 * pr][0] = t[0], bf[2 * pr][1] = t[1], bf[2 * pr + 1][0] = t[2], bf[2 * pr + 1][1] = t[3];
      }
#pragma unroll
      for (int mt = 0; mt < C::MT; ++mt)
#pragma unroll
        for (int j = 0; j < C::NT; ++j) detail::mma16816(acc[mt][j], af[mt], bf[j][0], bf[j][1]);
    }
  }

  __device__ void mainloop(Acc& acc) const {
    const int ktiles = (a.K + kPfBK - 1) / kPfBK;
#pragma unroll
    for (int st = 0; st < kPfStages - 1; ++st) {
      if (st < ktiles) load(st, st);
      detail::cp_async_commit();
    }
    float cur_g = 1.f, cur_u = 1.f, pre_g = 1.f, pre_u = 1.f;  // FP8: current and next k block's scales
    if constexpr (FP8) cur_g = pre_g = warp_scale(false, 0), cur_u = pre_u = warp_scale(true, 0);
    for (int it = 0; it < ktiles; ++it) {
      detail::cp_async_wait<kPfStages - 2>();
      __syncthreads();  // stage `it` landed for every thread; stage it - 1 (and the widened tile) are free
      if (it + kPfStages - 1 < ktiles) load((it + kPfStages - 1) % kPfStages, it + kPfStages - 1);
      detail::cp_async_commit();
      if constexpr (FP8) {
        if (it > 0 && (it * kPfBK) / 128 != ((it - 1) * kPfBK) / 128) {
          rescale(acc, cur_g / pre_g, cur_u / pre_u);
          cur_g = pre_g, cur_u = pre_u;
        }
        const int kb_next = ((it + 1) * kPfBK) / 128;  // prefetched a k tile ahead of its use
        if (it + 1 < ktiles && kb_next != (it * kPfBK) / 128) pre_g = warp_scale(false, kb_next), pre_u = warp_scale(true, kb_next);
        widen(it % kPfStages);
        __syncthreads();
        mma_tile(As(it % kPfStages), Wide(), acc);
      } else {
        mma_tile(As(it % kPfStages), Bs(it % kPfStages), acc);
      }
    }
    detail::cp_async_wait<0>();
    if constexpr (FP8) rescale(acc, cur_g, cur_u);
  }

  __device__ void epilogue(const Acc& acc) const {
    const int g = lane / 4, c = lane % 4;
#pragma unroll
    for (int mt = 0; mt < C::MT; ++mt)
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const int r = wm * (BM / 2) + mt * 16 + g + 8 * half;
        if (r >= rows) continue;
        if constexpr (GATE_UP) {
#pragma unroll
          for (int j = 0; j < C::NT / 2; ++j) {
            const int col = n0 + wn * (BN / 8) + j * 8 + 2 * c;
            if (col >= a.N) continue;
            const float g0 = acc[mt][j][2 * half], g1 = acc[mt][j][2 * half + 1];
            const float u0 = acc[mt][j + C::NT / 2][2 * half], u1 = acc[mt][j + C::NT / 2][2 * half + 1];
            const float h0 = g0 / (1.f + expf(-g0)) * u0, h1 = g1 / (1.f + expf(-g1)) * u1;
            *reinterpret_cast<__nv_bfloat162*>(a.h + std::size_t(p0 + r) * a.N + col) = __floats2bfloat162_rn(h0, h1);
          }
        } else {
          const int ent = entry[r];
          const float wt = a.topk_weights[ent];
          float* dst = a.out + std::size_t(ent / a.top_k) * a.N;
#pragma unroll
          for (int j = 0; j < C::NT; ++j) {
            const int col = n0 + wn * (BN / 4) + j * 8 + 2 * c;
            if (col >= a.N) continue;
            atomicAdd(reinterpret_cast<float2*>(dst + col),
                      make_float2(wt * acc[mt][j][2 * half], wt * acc[mt][j][2 * half + 1]));
          }
        }
      }
  }
};

template <int BM, int BN, bool FP8, bool GATE_UP>
__global__ void __launch_bounds__(kPfThreads, BN == 128 ? 2 : 1) moe_prefill_kernel(GemmArgs a) {
  using Cta = PfCta<BM, BN, FP8, GATE_UP>;
  constexpr int kPfBN = BN;
  using BT = typename Cta::BT;
  const int tile_idx = a.n_fastest ? blockIdx.y : blockIdx.x, n_tile = a.n_fastest ? blockIdx.x : blockIdx.y;
  if (tile_idx >= *a.num_tiles) return;  // the grid is sized for the worst case
  extern __shared__ __align__(128) unsigned char smem[];
  __shared__ const __nv_bfloat16* arow[BM];
  __shared__ const BT* brow[kPfBN];
  __shared__ int entry[BM];
  const int4 tile = a.tiles[tile_idx];  // {expert, first perm index, rows}
  const int e = tile.x, p0 = tile.y, rows = tile.z;
  const int n0 = n_tile * (GATE_UP ? kPfBN / 2 : kPfBN);
  const int tid = threadIdx.x, warp = tid / 32;
  if (tid < BM) {
    const int p = p0 + tid;
    const int ent = tid < rows ? a.perm[p] : -1;
    entry[tid] = ent;
    arow[tid] = ent < 0 ? nullptr : a.a_src + (GATE_UP ? std::size_t(ent / a.top_k) * a.K : std::size_t(p) * a.K);
  }
  if (tid < kPfBN) {
    const bool up = GATE_UP && tid >= kPfBN / 2;
    const int col = GATE_UP ? n0 + tid % (kPfBN / 2) : n0 + tid;
    const long wrow = up ? long(a.inter) + col : col;
    const long rows_per_expert = GATE_UP ? 2L * a.inter : a.N;
    brow[tid] = col < a.N ? static_cast<const BT*>(a.w) + (e * rows_per_expert + wrow) * a.K : nullptr;
  }
  __syncthreads();
  const Cta cta{a, smem, arow, brow, entry, e, p0, rows, n0, tid, tid % 32, warp / 4, warp % 4};
  typename Cta::Acc acc = {};
  cta.mainloop(acc);
  cta.epilogue(acc);
}

}  // namespace troupe::kernels::moe_detail
