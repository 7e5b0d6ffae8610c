#pragma once
// The 512 + 64 MLA attention kernel (DeepSeek V2/V3/R1): bf16 mma.sync m16n8k16 for q.K^T and P.V, a two-stage
// cp.async pipeline over 64 cached rows at a time, online softmax in float32 (base 2).
//
// One CTA (8 warps) = 16 query rows (tokens x heads of one head block) x one KV split; grid (head block, token
// tile, split), head blocks fastest so the CTAs that read the same cached rows run together and share L2:
//
//   smem kv[stage]: 64 cached rows x 576 (padded to 584)      S = Q . K^T   [16 x 64]: see scores_split_k
//   smem q:         16 query rows x 576                       O += P . V    [16 x 512]: warp w owns columns 64w..64w+63
//   smem p:         P in bf16 [16 x 64] (S -> softmax -> P crosses warps here)
//
// mma.sync m16n8k16 fragments (g = lane / 4, c = lane % 4):
//   A (16x16 row-major): {A[g][2c..], A[g+8][2c..], A[g][2c+8..], A[g+8][2c+8..]}
//   B (16x8, B[k][n]):   {B[2c..2c+1][g], B[2c+8..2c+9][g]}
//   C (16x8 float):      {C[g][2c], C[g][2c+1], C[g+8][2c], C[g+8][2c+1]}
// For S, B[k][n] = K[n][k]: two consecutive bf16 of one cached row, a plain 32-bit load. For P.V, B[k][n] = V[k][n]
// runs down a column: ldmatrix .trans builds it. The 16-byte row padding makes both conflict-free.
#include "kernels/core/batch.hpp"
#include "kernels/core/mma.cuh"
#include "kernels/core/pdl.cuh"
#include "kernels/mla/mla_plan.hpp"

#include <cuda_bf16.h>
#include <cstdint>

namespace troupe::kernels::mla_detail {

using detail::cp_async16;
using detail::cp_async_commit;
using detail::cp_async_wait;
using detail::ld32;

constexpr int kFastThreads = 256;
constexpr int kD = kFastLatent + kFastRope;  // 576
constexpr int kStride = kD + 8;              // smem row stride in elements (1168 bytes)
constexpr int kPStride = kKvTile + 8;

struct FastSmem {
  __nv_bfloat16 kv[2][kKvTile][kStride];
  __nv_bfloat16 q[kRowsPerCta][kStride];
  __nv_bfloat16 p[kRowsPerCta][kPStride];
  float red_max[8][kRowsPerCta];
  float red_sum[8][kRowsPerCta];
  float sx[4][2][4][4][32];  // S partials [k quarter][row half][n8 tile][fragment value][lane]
};

struct FastArgs {
  const __nv_bfloat16* q;
  const __nv_bfloat16* cache;
  AttnBatch b;
  int num_heads;
  float scale_log2;
  __nv_bfloat16* out;
  float* part_o;    // [splits, tokens * heads, 512], only when splits > 1
  float* part_lse;  // [splits, tokens * heads] (base 2)
  int heads_per_block, tokens_per_tile, splits, split_len;
};

__device__ __forceinline__ std::uint32_t ld32(const __nv_bfloat16* p) {
  return *reinterpret_cast<const std::uint32_t*>(p);
}


// Cached rows [kv0, kv0 + 64) of sequence `seq` into kv[stage]; rows at or past `hi` are zero-filled (a zero
// row times P = 0 keeps P.V finite; stale shared memory might hold NaN bit patterns). Four threads per row:
// one block-table lookup each, then 18 16-byte copies (chunks sub, sub + 4, ...).
__device__ __forceinline__ void load_kv_tile(const FastArgs& a, FastSmem& sm, int stage, int seq, int kv0, int hi) {
  static_assert(kFastThreads == 4 * kKvTile, "four threads per cached row");
  constexpr int kChunks = kD / 8;  // 16-byte chunks per row
  const int r = threadIdx.x >> 2, sub = threadIdx.x & 3, pos = kv0 + r;
  const bool valid = pos < hi;
  const __nv_bfloat16* src = a.cache;
  if (valid) {
    const long block = a.b.block_tables[std::size_t(seq) * a.b.max_blocks_per_seq + pos / a.b.block_size];
    src = a.cache + (block * a.b.block_size + pos % a.b.block_size) * kD;
  }
#pragma unroll
  for (int ch = sub; ch < kChunks; ch += 4) cp_async16(&sm.kv[stage][r][ch * 8], valid ? src + ch * 8 : src, valid);
}

// Row r of the CTA's 16: token tile_t0 + r / heads_per_block, head head0 + r % heads_per_block; active when the
// token belongs to the run [run0, run1) being processed and the head exists.
struct RowMap {
  int token, head;
  bool active;
};
__device__ __forceinline__ RowMap row_of(const FastArgs& a, int r, int tile_t0, int run0, int run1) {
  RowMap m;
  const int lt = r / a.heads_per_block;
  m.token = tile_t0 + lt;
  m.head = blockIdx.x * a.heads_per_block + r % a.heads_per_block;
  m.active = lt < a.tokens_per_tile && m.token >= run0 && m.token < run1 && m.head < a.num_heads;
  return m;
}

// S with the query in registers: warp w = (k quarter kq = w / 2, kv half nh = w % 2) multiplies its 144 query
// columns (9 k steps, fragments loaded once per run) with its 32 cached rows (4 n8 tiles); the 4 k quarters'
// partial sums meet in shared memory, and each warp keeps the n8 tile kq of its half (columns 32 nh + 8 kq).
// Every cached value is read from shared memory once per tile and the query never, against 8 query reads
// when each warp took 8 rows over all 576 columns.
constexpr int kQSteps = kD / 16 / 4;  // 9
__device__ __forceinline__ void load_q_frags(const FastSmem& sm, int kq, int g, int c,
                                             std::uint32_t (&qf)[kQSteps][4]) {
#pragma unroll
  for (int ks = 0; ks < kQSteps; ++ks) {
    const int k0 = (kq * kQSteps + ks) * 16;
    qf[ks][0] = ld32(&sm.q[g][k0 + 2 * c]);
    qf[ks][1] = ld32(&sm.q[g + 8][k0 + 2 * c]);
    qf[ks][2] = ld32(&sm.q[g][k0 + 8 + 2 * c]);
    qf[ks][3] = ld32(&sm.q[g + 8][k0 + 8 + 2 * c]);
  }
}

__device__ __forceinline__ void scores_split_k(FastSmem& sm, int stage, int nh, int kq, int lane, int g, int c,
                                               const std::uint32_t (&qf)[kQSteps][4], float (&s)[4]) {
  float acc[4][4] = {};
#pragma unroll
  for (int ks = 0; ks < kQSteps; ++ks) {
    const int k0 = (kq * kQSteps + ks) * 16;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const __nv_bfloat16* krow = sm.kv[stage][32 * nh + 8 * j + g];
      detail::mma16816(acc[j], qf[ks], ld32(krow + k0 + 2 * c), ld32(krow + k0 + 8 + 2 * c));
    }
  }
#pragma unroll
  for (int j = 0; j < 4; ++j)
#pragma unroll
    for (int i = 0; i < 4; ++i) sm.sx[kq][nh][j][i][lane] = acc[j][i];
  __syncthreads();
#pragma unroll
  for (int i = 0; i < 4; ++i)
    s[i] = (sm.sx[0][nh][kq][i][lane] + sm.sx[1][nh][kq][i][lane]) +
           (sm.sx[2][nh][kq][i][lane] + sm.sx[3][nh][kq][i][lane]);
}

__device__ __forceinline__ void pv(const FastSmem& sm, int stage, int warp, int lane, int g, int c,
                                   float (&o)[8][4]) {
#pragma unroll
  for (int k0 = 0; k0 < kKvTile; k0 += 16) {
    const std::uint32_t a[4] = {ld32(&sm.p[g][k0 + 2 * c]), ld32(&sm.p[g + 8][k0 + 2 * c]),
                                ld32(&sm.p[g][k0 + 8 + 2 * c]), ld32(&sm.p[g + 8][k0 + 8 + 2 * c])};
    const int mi = lane >> 3;
    const int row = k0 + (lane & 7) + (mi & 1) * 8;
#pragma unroll
    for (int jp = 0; jp < 4; ++jp) {
      const int col = warp * 64 + jp * 16 + (mi >> 1) * 8;
      const unsigned addr = static_cast<unsigned>(__cvta_generic_to_shared(&sm.kv[stage][row][col]));
      std::uint32_t b0, b1, b2, b3;
      asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                   : "=r"(b0), "=r"(b1), "=r"(b2), "=r"(b3)
                   : "r"(addr));
      detail::mma16816(o[2 * jp], a, b0, b1);
      detail::mma16816(o[2 * jp + 1], a, b2, b3);
    }
  }
}

// Reduces a value over the 4 lanes that share a row (same g).
__device__ __forceinline__ float quad_max(float v) {
  v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 1));
  return fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 2));
}
__device__ __forceinline__ float quad_sum(float v) {
  v += __shfl_xor_sync(0xffffffffu, v, 1);
  return v + __shfl_xor_sync(0xffffffffu, v, 2);
}

// Writes this thread's part of the finished rows: bf16 output (one split) or float partials + lse.
__device__ __forceinline__ void store_rows(const FastArgs& a, const float (&o)[8][4], const float (&m)[2],
                                           const float (&l)[2], int warp, int g, int c, int tile_t0, int run0,
                                           int run1) {
  const std::size_t rows = std::size_t(a.b.num_tokens) * a.num_heads;
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const RowMap rm = row_of(a, g + 8 * half, tile_t0, run0, run1);
    if (!rm.active) continue;
    const std::size_t row = std::size_t(rm.token) * a.num_heads + rm.head;
    const float inv = l[half] > 0.f ? 1.f / l[half] : 0.f;
    if (a.splits == 1) {
      __nv_bfloat16* dst = a.out + row * kFastLatent + warp * 64 + 2 * c;
#pragma unroll
      for (int j = 0; j < 8; ++j)
        *reinterpret_cast<__nv_bfloat162*>(dst + 8 * j) =
            __floats2bfloat162_rn(o[j][2 * half] * inv, o[j][2 * half + 1] * inv);
    } else {
      const std::size_t prow = std::size_t(blockIdx.z) * rows + row;
      float* dst = a.part_o + prow * kFastLatent + warp * 64 + 2 * c;
#pragma unroll
      for (int j = 0; j < 8; ++j)
        *reinterpret_cast<float2*>(dst + 8 * j) = make_float2(o[j][2 * half] * inv, o[j][2 * half + 1] * inv);
      if (warp == 0 && c == 0) a.part_lse[prow] = l[half] > 0.f ? m[half] + log2f(l[half]) : -INFINITY;
    }
  }
}

// Online softmax step for this thread's 4 scores (rows g, g + 8; columns col, col + 1): mask past each row's
// limit, exchange row maxima and sums through shared memory, write P (bf16) to sm.p, update m and l; alpha is
// the factor the rows' running outputs must be rescaled by.
__device__ __forceinline__ void softmax_tile(FastSmem& sm, float (&s)[4], const int (&lim)[2], int col,
                                             float scale_log2, int warp, int g, int c, int cb, float (&m)[2],
                                             float (&l)[2], float (&alpha)[2]) {
  float mx[2];
#pragma unroll
  for (int half = 0; half < 2; ++half) {
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      float& v = s[2 * half + j];
      v = col + j < lim[half] ? v * scale_log2 : -INFINITY;
    }
    mx[half] = quad_max(fmaxf(s[2 * half], s[2 * half + 1]));
  }
  if (c == 0) sm.red_max[warp][g] = mx[0], sm.red_max[warp][g + 8] = mx[1];
  __syncthreads();
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    float tmax = -INFINITY;
#pragma unroll
    for (int w = 0; w < 8; ++w) tmax = fmaxf(tmax, sm.red_max[w][g + 8 * half]);
    const float m_new = fmaxf(m[half], tmax);
    const float ref = m_new == -INFINITY ? 0.f : m_new;  // a row with nothing valid yet stays at zero
    alpha[half] = exp2f(m[half] - ref);
    m[half] = m_new;
    const float p0 = exp2f(s[2 * half] - ref), p1 = exp2f(s[2 * half + 1] - ref);
    *reinterpret_cast<__nv_bfloat162*>(&sm.p[g + 8 * half][cb + 2 * c]) = __floats2bfloat162_rn(p0, p1);
    const float ps = quad_sum(p0 + p1);
    if (c == 0) sm.red_sum[warp][g + 8 * half] = ps;
  }
  __syncthreads();
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    float sum = 0.f;
#pragma unroll
    for (int w = 0; w < 8; ++w) sum += sm.red_sum[w][g + 8 * half];
    l[half] = l[half] * alpha[half] + sum;
  }
}

// The cached rows [lo, hi) that this CTA's KV split attends to for the tokens [run0, run1) of one sequence.
__device__ __forceinline__ void run_bounds(const FastArgs& a, int run0, int run1, int& lo, int& hi) {
  hi = 0;  // the run's causal horizon: max position + 1
  for (int t = run0; t < run1; ++t) hi = max(hi, a.b.positions[t] + 1);
  lo = blockIdx.z * a.split_len;
  hi = min(hi, lo + a.split_len);
}

// The end of the run of tokens that starts at run0 inside [run0, t1): the tokens of sequence token_seq[run0].
__device__ __forceinline__ int run_end(const FastArgs& a, int run0, int t1) {
  const int seq = a.b.token_seq[run0];
  int run1 = run0 + 1;
  while (run1 < t1 && a.b.token_seq[run1] == seq) ++run1;
  return run1;
}

// One run of tokens of the same sequence inside the CTA's token tile, over this CTA's KV split. tile0_issued: the
// caller already issued (and committed) the copies of the run's first cached tile into kv[0].
__device__ void attend_run(const FastArgs& a, FastSmem& sm, int tile_t0, int run0, int run1, int seq,
                           bool tile0_issued) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, c = lane % 4;
  int lo, hi;
  run_bounds(a, run0, run1, lo, hi);
  int lim[2];
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const RowMap rm = row_of(a, g + 8 * half, tile_t0, run0, run1);
    lim[half] = rm.active ? min(a.b.positions[rm.token] + 1, hi) : 0;
  }
  // Query rows into shared memory (zeros for inactive rows).
  for (int i = threadIdx.x; i < kRowsPerCta * (kD / 8); i += kFastThreads) {
    const int r = i / (kD / 8), ch = i % (kD / 8);
    const RowMap rm = row_of(a, r, tile_t0, run0, run1);
    uint4 v = make_uint4(0, 0, 0, 0);
    if (rm.active)
      v = *reinterpret_cast<const uint4*>(a.q + (std::size_t(rm.token) * a.num_heads + rm.head) * kD + ch * 8);
    *reinterpret_cast<uint4*>(&sm.q[r][ch * 8]) = v;
  }
  __syncthreads();
  const int nh = warp & 1, kq = warp >> 1;
  std::uint32_t qf[kQSteps][4];
  load_q_frags(sm, kq, g, c, qf);
  const int cb = 32 * nh + 8 * kq;  // this warp's 8 columns of the S / P tile
  float o[8][4] = {};
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};
  const int tiles = lo < hi ? (hi - lo + kKvTile - 1) / kKvTile : 0;
  if (!tile0_issued) {
    if (tiles > 0) load_kv_tile(a, sm, 0, seq, lo, hi);
    cp_async_commit();
  }
  for (int it = 0; it < tiles; ++it) {
    const int stage = it & 1, kv0 = lo + it * kKvTile;
    if (it + 1 < tiles) load_kv_tile(a, sm, stage ^ 1, seq, kv0 + kKvTile, hi);
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();
    float s[4];
    scores_split_k(sm, stage, nh, kq, lane, g, c, qf, s);
    float alpha[2];
    softmax_tile(sm, s, lim, kv0 + cb + 2 * c, a.scale_log2, warp, g, c, cb, m, l, alpha);
#pragma unroll
    for (int half = 0; half < 2; ++half)
#pragma unroll
      for (int j = 0; j < 8; ++j) o[j][2 * half] *= alpha[half], o[j][2 * half + 1] *= alpha[half];
    pv(sm, stage, warp, lane, g, c, o);
    __syncthreads();  // the stage, p and the reductions are rewritten next iteration
  }
  cp_async_wait<0>();
  store_rows(a, o, m, l, warp, g, c, tile_t0, run0, run1);
  __syncthreads();  // q is rewritten by the next run
}

__global__ void __launch_bounds__(kFastThreads, 1) mla_fast_kernel(FastArgs a) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  FastSmem& sm = *reinterpret_cast<FastSmem*>(smem_raw);
  const int t0 = blockIdx.y * a.tokens_per_tile;
  const int t1 = min(t0 + a.tokens_per_tile, a.b.num_tokens);
  // The first run's first cached tile is copied before the wait: only q comes from the kernel right before this
  // one; the cache rows (this step's included, written by mla_latent_prep) and the batch's tables come from
  // kernels that completed before that kernel was scheduled (pdl.cuh), so the copies overlap its end.
  if (t0 < t1) {
    int lo, hi;
    run_bounds(a, t0, run_end(a, t0, t1), lo, hi);
    if (lo < hi) load_kv_tile(a, sm, 0, a.b.token_seq[t0], lo, hi);
    cp_async_commit();
  }
  detail::pdl_wait();     // q comes from the kernel before (pdl.cuh)
  detail::pdl_trigger();  // combine_uv may load its W_UV rows meanwhile (most SMs are idle at one token)
  // Tokens of one tile may belong to several sequences (decode batches with few heads): one run each.
  for (int run0 = t0; run0 < t1;) {
    const int run1 = run_end(a, run0, t1);
    attend_run(a, sm, t0, run0, run1, a.b.token_seq[run0], run0 == t0);
    run0 = run1;
  }
}

}  // namespace troupe::kernels::mla_detail
