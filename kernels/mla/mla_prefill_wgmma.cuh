#pragma once
// The non-absorbed MLA prefill attention on Hopper's warpgroup MMA (wgmma, sm_90a) for DeepSeek's head dims (nope
// 128, rope 64, v 128) and 128-row query tiles: the contract, plan, masking, softmax and outputs of
// mla_prefill_kernel (whose pieces it shares), the two products on wgmma instead of mma.sync. Two warpgroups of 4
// warps, 64 query rows each, share every staged key tile:
//
//   shared memory (K-major, 128-byte swizzle: wgmma.cuh; every block 1024-byte aligned)
//     Q   [128 rows][192]            3 atoms of 128 x 64                        48 KB, staged once
//     K   [2 stages][64 keys][192]   3 atoms of 64 x 64 per stage          2 x 24 KB, cp.async, one tile ahead
//     Vt  [2 stages][128 dims][64]   one atom per stage (V transposed)     2 x 16 KB, through registers, one ahead
//
// Per key tile and warpgroup: S (64 x 64) = 12 wgmma m64n64k16 over Q and K in shared memory; the scale, the causal
// mask and the online softmax in registers (the accumulator layout is mma.sync's: SoftmaxRows as is); O (64 x 128)
// += P Vt^T as 4 wgmma m64n128k16 with P straight from registers.
#include "kernels/core/wgmma.cuh"
#include "kernels/mla/mla_prefill_kernel.cuh"

#include <cstdint>

namespace troupe::kernels::mla_prefill_detail {

struct WgLayout {
  static constexpr int kTileQ = 128, kThreads = 256, kQK = 192, kDV = 128, kNope = 128, kRope = 64;
  static constexpr int kQAtom = kTileQ * 128, kKAtom = kKeys * 128;  // bytes of one 64-wide column block
  static constexpr int kQBytes = 3 * kQAtom, kKStage = 3 * kKAtom, kVStage = kDV * 128;
  static constexpr int kK0 = kQBytes, kV0 = kK0 + 2 * kKStage, kBytes = kV0 + 2 * kVStage;
  static constexpr int kSmemBytes = kBytes + 1024;  // room to align the base to 1024
  static constexpr int kVLoads = kKeys * (kDV / 8) / kThreads;  // 16-byte V pieces per thread and tile
  static_assert(kVLoads == 4 && kKeys == 64 && kDV == 128, "wg_load_v / wg_store_vt: 4 keys x 8 dims a thread");
};

// Q rows of the tile (zeros past rows_in) into the swizzled atoms.
__device__ __forceinline__ void wg_stage_q(const Args& p, const MlaPrefillSeg& sg, int h, int q_first, int rows_in,
                                           unsigned char* qs) {
  using L = WgLayout;
  for (int i = threadIdx.x; i < L::kTileQ * (L::kQK / 8); i += L::kThreads) {
    const int r = i / (L::kQK / 8), ch = i % (L::kQK / 8);
    const bool valid = r < rows_in;
    const bf16* src = p.q + std::size_t(sg.t0 + q_first + (valid ? r : 0)) * p.q_stride + std::size_t(h) * L::kQK;
    detail::cp_async16(qs + (ch / 8) * L::kQAtom + detail::sw128_offset(r, (ch % 8) * 8), src + ch * 8, valid);
  }
}

// Keys [k0, k0 + 64) of the segment (zeros from n_keys on): K row = [k_nope of head h | kpe].
__device__ __forceinline__ void wg_stage_k(const Args& p, const MlaPrefillSeg& sg, int h, int k0, int n_keys,
                                           unsigned char* ks) {
  using L = WgLayout;
  for (int i = threadIdx.x; i < kKeys * (L::kQK / 8); i += L::kThreads) {
    const int r = i / (L::kQK / 8), ch = i % (L::kQK / 8), key = k0 + r;
    const bool valid = key < n_keys;
    const std::size_t row = std::size_t(sg.buf0) + (valid ? key : 0);
    const bf16* src = ch < L::kNope / 8 ? p.kv + row * p.kv_stride + std::size_t(h) * (L::kNope + L::kDV) + ch * 8
                                        : p.kpe + row * L::kRope + (ch - L::kNope / 8) * 8;
    detail::cp_async16(ks + (ch / 8) * L::kKAtom + detail::sw128_offset(r, (ch % 8) * 8), src, valid);
  }
}

// The tile's V rows into registers: thread t holds keys 4 (t % 16) .. + 3, dims 8 (t / 16) .. + 7, one uint4 per key.
__device__ __forceinline__ void wg_load_v(const Args& p, const MlaPrefillSeg& sg, int h, int k0, int n_keys,
                                          uint4 (&v)[WgLayout::kVLoads]) {
  using L = WgLayout;
  const int ch = threadIdx.x / 16;
#pragma unroll
  for (int j = 0; j < L::kVLoads; ++j) {
    const int key = k0 + 4 * (threadIdx.x % 16) + j;
    v[j] = key < n_keys ? *reinterpret_cast<const uint4*>(p.kv + (std::size_t(sg.buf0) + key) * p.kv_stride +
                                                          std::size_t(h) * (L::kNope + L::kDV) + L::kNope + ch * 8)
                        : make_uint4(0, 0, 0, 0);
  }
}

// ... and transposed into Vt (row = dim, column = key): per dim, the thread's 4 keys are 8 adjacent bytes, packed
// from the 4 rows' halves by byte permutes: 8 stores of 8 bytes instead of 32 of 2.
__device__ __forceinline__ void wg_store_vt(const uint4 (&v)[WgLayout::kVLoads], unsigned char* vt) {
  const int q = threadIdx.x % 16, ch = threadIdx.x / 16;
  const std::uint32_t* w0 = &v[0].x;
  const std::uint32_t* w1 = &v[1].x;
  const std::uint32_t* w2 = &v[2].x;
  const std::uint32_t* w3 = &v[3].x;
#pragma unroll
  for (int w = 0; w < 4; ++w) {  // word w of each key: dims 8 ch + 2 w (low half), + 1 (high half)
#pragma unroll
    for (int hi = 0; hi < 2; ++hi) {
      const unsigned sel = hi ? 0x7632u : 0x5410u;
      const uint2 keys = make_uint2(__byte_perm(w0[w], w1[w], sel), __byte_perm(w2[w], w3[w], sel));
      *reinterpret_cast<uint2*>(vt + detail::sw128_offset(ch * 8 + 2 * w + hi, 4 * q)) = keys;
    }
  }
}

__global__ void __launch_bounds__(WgLayout::kThreads, 1) mla_prefill_wgmma_kernel(Args p) {
  using L = WgLayout;
  extern __shared__ unsigned char smem_raw[];
  unsigned char* smem = reinterpret_cast<unsigned char*>((reinterpret_cast<std::uintptr_t>(smem_raw) + 1023) &
                                                         ~std::uintptr_t(1023));
  const std::int32_t item = p.tiles[blockIdx.x];
  const MlaPrefillSeg sg = p.segs[item >> 16];
  const int tile = item & 0xffff, h = blockIdx.y;
  const int q_first = tile * L::kTileQ, rows_in = min(L::kTileQ, sg.n_q - q_first);
  const int k_end = min(sg.k_hi, sg.pos0 + q_first + rows_in);  // one past the tile's last visible key
  if (k_end <= sg.k_lo) return;                                   // the whole CTA: no barrier yet
  const int n_keys = k_end - sg.k_lo;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, wg = warp / 4, g = lane / 4, c = lane % 4;
  const int r_a = warp * 16 + g, r_b = r_a + 8;  // warp w of warpgroup wg: rows 64 wg + 16 (w % 4) ..
  const bool va = r_a < rows_in, vb = r_b < rows_in;
  const int lim_a = va ? min(sg.pos0 + q_first + r_a, k_end - 1) - sg.k_lo : -1;
  const int lim_b = vb ? min(sg.pos0 + q_first + r_b, k_end - 1) - sg.k_lo : -1;
  const int min_lim = rows_in == L::kTileQ ? min(sg.pos0 + q_first, k_end - 1) - sg.k_lo : -1;

  unsigned char* qs = smem;
  auto k_stage = [&](int b) { return smem + L::kK0 + b * L::kKStage; };
  auto v_stage = [&](int b) { return smem + L::kV0 + b * L::kVStage; };
  wg_stage_q(p, sg, h, q_first, rows_in, qs);
  wg_stage_k(p, sg, h, 0, n_keys, k_stage(0));
  detail::cp_async_commit();
  {
    uint4 v[L::kVLoads];
    wg_load_v(p, sg, h, 0, n_keys, v);
    wg_store_vt(v, v_stage(0));
  }
  detail::SoftmaxRows<L::kDV> st;  // rows may see no key in this piece: SoftmaxRows keeps them at 0
  st.clear();
  const int n_tiles = (n_keys + kKeys - 1) / kKeys;
  for (int it = 0; it < n_tiles; ++it) {
    const bool more = it + 1 < n_tiles;
    uint4 vn[L::kVLoads];
    if (more) {  // the next tile: K by cp.async into the other stage, V into registers until this one is done
      wg_stage_k(p, sg, h, (it + 1) * kKeys, n_keys, k_stage((it + 1) & 1));
      detail::cp_async_commit();
      wg_load_v(p, sg, h, (it + 1) * kKeys, n_keys, vn);
      detail::cp_async_wait<1>();
    } else {
      detail::cp_async_wait<0>();
    }
    detail::fence_proxy_async();  // this tile's K (cp.async) and Vt (st.shared) are read by the tensor cores
    __syncthreads();
    const unsigned char* ks = k_stage(it & 1);
    float s[kKeys / 8][4];
#pragma unroll
    for (int n = 0; n < kKeys / 8; ++n) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.f;
    detail::wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < L::kQK / 16; ++kk)
      detail::wgmma_m64n64k16_ss(s, detail::sw128_desc(qs + (kk / 4) * L::kQAtom + wg * 64 * 128 + (kk % 4) * 32),
                                 detail::sw128_desc(ks + (kk / 4) * L::kKAtom + (kk % 4) * 32), 1);
    detail::wgmma_commit();
    detail::wgmma_wait<0>();
    detail::wgmma_fence_operands(s);
    scale_and_mask(s, c, it * kKeys, min_lim, lim_a, lim_b, p.scale_log2);
    std::uint32_t pf[kKeys / 16][4];
    st.update(s, pf);
    const unsigned char* vt = v_stage(it & 1);
    detail::wgmma_fence();  // O was rescaled by the softmax update
#pragma unroll
    for (int kk = 0; kk < kKeys / 16; ++kk) detail::wgmma_m64n128k16_rs(st.o, pf[kk], detail::sw128_desc(vt + kk * 32));
    detail::wgmma_commit();
    detail::wgmma_wait<0>();
    detail::wgmma_fence_operands(st.o);
    if (more) wg_store_vt(vn, v_stage((it + 1) & 1));  // last read in the previous tile, before this one's barrier
    __syncthreads();  // this tile's K stage is refilled by the next iteration's prefetch
  }
  st.reduce_sums();
  finish_row<L::kDV>(p, sg, h, va ? sg.t0 + q_first + r_a : -1, st.m_a, st.l_a, st.o, 0, c);
  finish_row<L::kDV>(p, sg, h, vb ? sg.t0 + q_first + r_b : -1, st.m_b, st.l_b, st.o, 1, c);
}

}  // namespace troupe::kernels::mla_prefill_detail
