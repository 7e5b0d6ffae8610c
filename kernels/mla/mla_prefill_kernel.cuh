#pragma once
// The non-absorbed MLA prefill attention kernel (mla_prefill.hpp), FlashAttention-2 style with mma.sync
// m16n8k16 (bf16 in, float32 accumulate; fragment layouts in kernels/core/mma.cuh).
//
// One CTA of WARPS (4 or 8) warps per (work item = segment x 16 WARPS-query tile, head); warp w owns query rows
// [16w, 16w + 16). More warps per CTA share each staged key tile (less L2 traffic and fewer copies per flop).
// Keys of the segment go through shared memory 64 at a time, double-buffered with cp.async:
//
//   stage buffer i:  K [64 keys][nope | rope | pad 8]   V [64 keys][v | pad 8]
//                    K row = kv[buf row, head h: 0..nope) | kpe[buf row]      V row = kv[.., h: nope..nope+v)
//
// (the 8-element pad makes the row stride 16 bytes off a multiple of 128, so fragment loads of 8 rows hit
// distinct banks). Per key tile each warp computes S = Q K^T (16 x 64, K fragments through ldmatrix), masks
// (key position <= query position, key inside the segment), runs the online softmax in the exp2 domain and
// accumulates O += P V (V fragments through ldmatrix.trans); P never leaves registers.
#include "kernels/core/mma.cuh"
#include "kernels/mla/mla_prefill.hpp"

#include <cstdint>

namespace troupe::kernels::mla_prefill_detail {

using detail::cp_async16;
using detail::ld32;
using detail::ldmatrix_x4;
using detail::ldmatrix_x4_trans;
using detail::mma16816;
using detail::pack_bf16;
using bf16 = __nv_bfloat16;

constexpr int kKeys = 64, kPad = 8;

template <int NOPE, int ROPE, int DV>
struct Shape {
  static constexpr int QK = NOPE + ROPE, KS = QK + kPad, VS = DV + kPad;
  static constexpr int kStage = kKeys * (KS + VS);  // bf16 per stage
  static constexpr int kSmemBytes = 2 * kStage * 2;
  static constexpr int kChunks = (NOPE + ROPE + DV) / 8;  // 16-byte pieces per key
  static_assert(NOPE % 8 == 0 && ROPE % 8 == 0 && QK % 16 == 0 && DV % 16 == 0, "mma tile shapes");
};

struct Args {
  const bf16* q;
  int q_stride;  // heads * qk
  const bf16* kv;
  int kv_stride;  // heads * (nope + v)
  const bf16* kpe;
  const MlaPrefillSeg* segs;
  const std::int32_t* tiles;
  float scale_log2;
  float* lse;
  bf16* out;
  int heads;
};

// Copies keys [k0, k0 + 64) of the segment (relative to k_lo; zeros from n_keys on) into one stage buffer.
template <int NOPE, int ROPE, int DV, int kThreads>
__device__ __forceinline__ void stage_keys(const Args& p, const MlaPrefillSeg& sg, int h, int k0, int n_keys, bf16* ks,
                                           bf16* vs) {
  using S = Shape<NOPE, ROPE, DV>;
  constexpr int kN = NOPE / 8, kR = ROPE / 8;
  for (int i = threadIdx.x; i < kKeys * S::kChunks; i += kThreads) {
    const int r = i / S::kChunks, ch = i % S::kChunks, key = k0 + r;
    const bool valid = key < n_keys;
    const std::size_t row = std::size_t(sg.buf0) + (valid ? key : 0);
    const bf16* head = p.kv + row * p.kv_stride + std::size_t(h) * (NOPE + DV);
    if (ch < kN)
      cp_async16(ks + r * S::KS + ch * 8, head + ch * 8, valid);
    else if (ch < kN + kR)
      cp_async16(ks + r * S::KS + ch * 8, p.kpe + row * ROPE + (ch - kN) * 8, valid);
    else
      cp_async16(vs + r * S::VS + (ch - kN - kR) * 8, head + NOPE + (ch - kN - kR) * 8, valid);
  }
}

// Writes the rows' normalized outputs, merged through the log-sum-exp with an earlier piece's when this is
// not the chunk's first segment; rows that saw no key leave out and lse untouched.
template <int DV>
__device__ __forceinline__ void finish_row(const Args& p, const MlaPrefillSeg& sg, int h, int t, float m, float l,
                                           const float (&o)[DV / 8][4], int half, int c) {
  if (t < 0 || l == 0.f) return;
  const std::size_t lse_at = std::size_t(t) * p.heads + h;
  const float lse_new = m + log2f(l);
  float w_old = 0.f, w_new = 1.f / l, lse = lse_new;
  if (!(sg.flags & kMlaSegFirst)) {
    const float lse_old = p.lse[lse_at];
    const float mx = fmaxf(lse_old, lse_new);
    const float a = exp2f(lse_old - mx), b = exp2f(lse_new - mx);
    w_old = a / (a + b), w_new = b / (a + b) / l;
    lse = mx + log2f(a + b);
  }
  bf16* dst = p.out + (std::size_t(t) * p.heads + h) * DV;
#pragma unroll
  for (int n = 0; n < DV / 8; ++n) {
    float x0 = o[n][2 * half] * w_new, x1 = o[n][2 * half + 1] * w_new;
    if (w_old != 0.f) {
      const __nv_bfloat162 prev = *reinterpret_cast<const __nv_bfloat162*>(dst + n * 8 + 2 * c);
      x0 += w_old * __bfloat162float(prev.x), x1 += w_old * __bfloat162float(prev.y);
    }
    *reinterpret_cast<std::uint32_t*>(dst + n * 8 + 2 * c) = pack_bf16(x0, x1);
  }
  if (!(sg.flags & kMlaSegLast) && c == 0) p.lse[lse_at] = lse;
}

// The A fragments of the thread's two query rows (zeros for rows past the tile's end).
template <int QK>
__device__ __forceinline__ void load_q(const Args& p, int t_a, int t_b, int h, bool va, bool vb, int c,
                                       std::uint32_t (&qf)[QK / 16][4]) {
  const bf16* qa = p.q + std::size_t(t_a) * p.q_stride + std::size_t(h) * QK;
  const bf16* qb = p.q + std::size_t(t_b) * p.q_stride + std::size_t(h) * QK;
#pragma unroll
  for (int kk = 0; kk < QK / 16; ++kk) {
    qf[kk][0] = va ? ld32(qa + kk * 16 + 2 * c) : 0u, qf[kk][1] = vb ? ld32(qb + kk * 16 + 2 * c) : 0u;
    qf[kk][2] = va ? ld32(qa + kk * 16 + 8 + 2 * c) : 0u, qf[kk][3] = vb ? ld32(qb + kk * 16 + 8 + 2 * c) : 0u;
  }
}

// Scores of one key tile (keys k0 .. k0 + 63 relative to k_lo, in the m16n8 accumulator layout, c = lane % 4) into
// the exp2 domain; keys past a row's limit at -inf.
__device__ __forceinline__ void scale_and_mask(float (&s)[kKeys / 8][4], int c, int k0, int min_lim, int lim_a,
                                               int lim_b, float scale_log2) {
  if (k0 + kKeys - 1 <= min_lim) {  // below every row's diagonal, inside the segment: no mask
#pragma unroll
    for (int n = 0; n < kKeys / 8; ++n)
#pragma unroll
      for (int j = 0; j < 4; ++j) s[n][j] *= scale_log2;
    return;
  }
#pragma unroll
  for (int n = 0; n < kKeys / 8; ++n)
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      const int key = k0 + n * 8 + 2 * c + j;
      s[n][j] = key <= lim_a ? s[n][j] * scale_log2 : -INFINITY;
      s[n][2 + j] = key <= lim_b ? s[n][2 + j] * scale_log2 : -INFINITY;
    }
}

// S = Q K^T of one staged key tile (keys k0 .. k0 + 63 relative to k_lo), scaled into the exp2 domain; keys past
// a row's limit at -inf.
template <int QK, int KS>
__device__ __forceinline__ void tile_scores(const bf16* ks, const std::uint32_t (&qf)[QK / 16][4], int lane, int k0,
                                            int min_lim, int lim_a, int lim_b, float scale_log2,
                                            float (&s)[kKeys / 8][4]) {
  const int c = lane % 4;
#pragma unroll
  for (int n = 0; n < kKeys / 8; ++n) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0;
  // K fragments: matrix m = lane / 8 of ldmatrix.x4 is (keys 16 n2 + 8 (m / 2) .., d 16 kk + 8 (m % 2) ..)
  // = {b0, b1} of n-tile 2 n2 and {b0, b1} of n-tile 2 n2 + 1.
#pragma unroll
  for (int n2 = 0; n2 < kKeys / 16; ++n2)
#pragma unroll
    for (int kk = 0; kk < QK / 16; ++kk) {
      std::uint32_t b[4];
      ldmatrix_x4(b, ks + (n2 * 16 + (lane / 16) * 8 + lane % 8) * KS + kk * 16 + ((lane / 8) & 1) * 8);
      mma16816(s[2 * n2], qf[kk], b[0], b[1]);
      mma16816(s[2 * n2 + 1], qf[kk], b[2], b[3]);
    }
  scale_and_mask(s, c, k0, min_lim, lim_a, lim_b, scale_log2);
}

// O += P V over one staged tile. V fragments through ldmatrix.trans: lane l addresses key 16 kk + l % 16, d chunk
// 16 jj + 8 (l / 16).
template <int DV, int VS>
__device__ __forceinline__ void accumulate_pv(const bf16* vs, const std::uint32_t (&pf)[kKeys / 16][4], int lane,
                                              detail::SoftmaxRows<DV>& st) {
#pragma unroll
  for (int jj = 0; jj < DV / 16; ++jj)
#pragma unroll
    for (int kk = 0; kk < kKeys / 16; ++kk) {
      std::uint32_t b[4];
      ldmatrix_x4_trans(b, vs + (kk * 16 + lane % 16) * VS + jj * 16 + (lane / 16) * 8);
      mma16816(st.o[2 * jj], pf[kk], b[0], b[1]);
      mma16816(st.o[2 * jj + 1], pf[kk], b[2], b[3]);
    }
}

template <int NOPE, int ROPE, int DV, int WARPS>
__global__ void __launch_bounds__(WARPS * 32) mla_prefill_kernel(Args p) {
  using S = Shape<NOPE, ROPE, DV>;
  constexpr int kThreads = WARPS * 32, kTileQ = WARPS * 16;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  bf16* smem = reinterpret_cast<bf16*>(smem_raw);
  const std::int32_t item = p.tiles[blockIdx.x];
  const MlaPrefillSeg sg = p.segs[item >> 16];
  const int tile = item & 0xffff, h = blockIdx.y;
  const int q_first = tile * kTileQ, rows_in = min(kTileQ, sg.n_q - q_first);
  const int k_end = min(sg.k_hi, sg.pos0 + q_first + rows_in);  // one past the tile's last visible key
  if (k_end <= sg.k_lo) return;                                   // the whole CTA: no __syncthreads yet
  const int n_keys = k_end - sg.k_lo;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, g = lane / 4, c = lane % 4;
  const int r_a = warp * 16 + g, r_b = r_a + 8;
  const bool va = r_a < rows_in, vb = r_b < rows_in;
  // Highest visible key, relative to k_lo (-1 and below: none; also rows past the chunk's end).
  const int lim_a = va ? min(sg.pos0 + q_first + r_a, k_end - 1) - sg.k_lo : -1;
  const int lim_b = vb ? min(sg.pos0 + q_first + r_b, k_end - 1) - sg.k_lo : -1;
  // The CTA's lowest limit (its first row's, when the tile is full): key tiles up to it need no mask.
  const int min_lim = rows_in == kTileQ ? min(sg.pos0 + q_first, k_end - 1) - sg.k_lo : -1;

  std::uint32_t qf[S::QK / 16][4];
  load_q<S::QK>(p, sg.t0 + q_first + (va ? r_a : 0), sg.t0 + q_first + (vb ? r_b : 0), h, va, vb, c, qf);
  detail::SoftmaxRows<DV> st;  // rows may see no key in this piece: SoftmaxRows keeps them at 0
  st.clear();

  const int n_tiles = (n_keys + kKeys - 1) / kKeys;
  stage_keys<NOPE, ROPE, DV, kThreads>(p, sg, h, 0, n_keys, smem, smem + kKeys * S::KS);
  detail::cp_async_commit();
  for (int it = 0; it < n_tiles; ++it) {
    if (it + 1 < n_tiles) {  // prefetch the next tile into the other buffer while this one is used
      bf16* nb = smem + ((it + 1) & 1) * S::kStage;
      stage_keys<NOPE, ROPE, DV, kThreads>(p, sg, h, (it + 1) * kKeys, n_keys, nb, nb + kKeys * S::KS);
      detail::cp_async_commit();
      detail::cp_async_wait<1>();
    } else {
      detail::cp_async_wait<0>();
    }
    __syncthreads();
    const bf16* ks = smem + (it & 1) * S::kStage;
    const bf16* vs = ks + kKeys * S::KS;
    float s[kKeys / 8][4];
    tile_scores<S::QK, S::KS>(ks, qf, lane, it * kKeys, min_lim, lim_a, lim_b, p.scale_log2, s);
    std::uint32_t pf[kKeys / 16][4];
    st.update(s, pf);
    accumulate_pv<DV, S::VS>(vs, pf, lane, st);
    __syncthreads();  // this buffer is refilled by the next iteration's prefetch
  }
  st.reduce_sums();
  finish_row<DV>(p, sg, h, va ? sg.t0 + q_first + r_a : -1, st.m_a, st.l_a, st.o, 0, c);
  finish_row<DV>(p, sg, h, vb ? sg.t0 + q_first + r_b : -1, st.m_b, st.l_b, st.o, 1, c);
}

}  // namespace troupe::kernels::mla_prefill_detail
