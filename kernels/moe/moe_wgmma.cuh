#pragma once
// The FP8 experts' GEMMs of the MoE prefill path (moe_lt.cu) as one grouped launch on wgmma (sm_90a) instead of
// one cuBLASLt call per expert: C[rows of expert e] = A[rows] W_e^T with DeepSeek's block scales (A: one float per
// row and 128-wide k block, token-major within each expert's segment as lt_quant_kernel writes them; W: one per
// 128 x 128 block). Work items ("tiles", built on the host from the segment offsets): 64 rows of one expert; the
// grid is (N / 256, tiles). Two warpgroups share the 64-row A tile, each computes 128 of the CTA's 256 columns.
//
//   per k block of 128 (one 128-byte swizzle atom row per A / B row; stages of 8 + 32 KB, kGmStages deep, filled by
//   the bulk tensor copy engine (tma.cuh) on one barrier per stage, kGmAhead blocks ahead):
//     sum (64 x 128, per warpgroup) = 4 wgmma m64n128k32 e4m3          (a fresh float32 sum per block)
//     acc += sum * a_scale[row][kb] * w_scale[n block][kb]             (DeepSeek's promotion, in registers)
//
// Rows past the segment's end are computed on whatever follows (other experts' rows, zeros past A) and not written.
#include "kernels/core/tma.cuh"
#include "kernels/core/wgmma.cuh"

#include <cuda_bf16.h>
#include <cuda_fp8.h>

#include <cstdint>

namespace troupe::kernels::moe_detail {

// kGmAhead blocks are in flight while one is multiplied.
constexpr int kGmBM = 64, kGmBN = 256, kGmBK = 128, kGmStages = 5, kGmAhead = 4, kGmThreads = 256;
constexpr int kGmAStage = kGmBM * kGmBK, kGmBStage = kGmBN * kGmBK, kGmStage = kGmAStage + kGmBStage;
constexpr int kGmSmem = kGmStages * kGmStage + 1024 + 64;  // + room to align the base to 1024, + the barriers
static_assert(kGmStages >= kGmAhead + 1, "a stage is refilled only after the barrier that follows its wgmma");

struct GmTile {
  std::int32_t expert, row0;  // rows [row0, min(row0 + 64, end of the expert's segment))
};

struct GmArgs {
  const float* a_scale;         // at seg * KB + kb * m + (row - seg) (seg / m: the expert's segment start / rows)
  const std::int32_t* offsets;  // [E + 1] segment starts
  const float* w_scale;         // [E][N / 128][K / 128]
  __nv_bfloat16* c;             // [rows, N], row stride ldc
  int ldc;
  const GmTile* tiles;
  int N, K;
};

// ta: A [rows][K] in boxes of 64 rows; tb: W as [E * N][K] in boxes of 256 rows (tma.hpp, 128-byte swizzle).
// Rows of A past the segment are other experts' (or zeros): their outputs are not written.
__global__ void __launch_bounds__(kGmThreads, 1)
    moe_fp8_wgmma_kernel(const __grid_constant__ CUtensorMap ta, const __grid_constant__ CUtensorMap tb, GmArgs p) {
  extern __shared__ unsigned char smem_raw[];
  unsigned char* smem = reinterpret_cast<unsigned char*>((reinterpret_cast<std::uintptr_t>(smem_raw) + 1023) &
                                                         ~std::uintptr_t(1023));
  auto* full = reinterpret_cast<std::uint64_t*>(smem + kGmStages * kGmStage);  // one per stage
  const GmTile t = p.tiles[blockIdx.y];
  const int n0 = blockIdx.x * kGmBN, KB = p.K / kGmBK;
  const int seg = p.offsets[t.expert], m = p.offsets[t.expert + 1] - seg, end = seg + m;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, wg = warp / 4, g = lane / 4, c = lane % 4;
  auto stage = [&](int kb) { return smem + (kb % kGmStages) * kGmStage; };
  auto load = [&](int kb) {  // one thread
    unsigned char* st = stage(kb);
    std::uint64_t* bar = full + kb % kGmStages;
    detail::mbar_expect_tx(bar, kGmStage);
    detail::tma_load_2d(st, &ta, kb * kGmBK, t.row0, bar);
    detail::tma_load_2d(st + kGmAStage, &tb, kb * kGmBK, t.expert * p.N + n0, bar);
  };
  if (threadIdx.x == 0) {
    for (int s = 0; s < kGmStages; ++s) detail::mbar_init(full + s, 1);
    detail::mbar_init_fence();
    for (int kb = 0; kb < kGmAhead && kb < KB; ++kb) load(kb);
  }
  __syncthreads();
  const int ra = t.row0 + (warp % 4) * 16 + g, rb = ra + 8;  // the thread's two rows (both warpgroups: same rows)
  const float* wsc = p.w_scale + (std::size_t(t.expert) * (p.N / 128) + n0 / 128 + wg) * KB;
  const float* asc = p.a_scale + std::size_t(seg) * KB;
  // The scales of a block, loaded one block ahead (raw: multiplied when used, so nothing waits on them early).
  const int ia = min(ra, end - 1) - seg, ib = min(rb, end - 1) - seg;
  auto scales = [&](int kb, float& w, float& a, float& b) {
    w = __ldg(wsc + kb), a = __ldg(asc + std::size_t(kb) * m + ia), b = __ldg(asc + std::size_t(kb) * m + ib);
  };
  float sw, sa, sb;
  scales(0, sw, sa, sb);
  float acc[16][4], sum[16][4];
#pragma unroll
  for (int j = 0; j < 16; ++j) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.f;
  for (int kb = 0; kb < KB; ++kb) {
    if (kb > 0) __syncthreads();  // both warpgroups' wgmma on block kb - 1 is done: its stage is refilled next
    if (threadIdx.x == 0 && kb + kGmAhead < KB) load(kb + kGmAhead);
    detail::mbar_wait(full + kb % kGmStages, unsigned(kb / kGmStages) & 1u);  // block kb has landed
    float nw = 0.f, na = 0.f, nb = 0.f;
    if (kb + 1 < KB) scales(kb + 1, nw, na, nb);
    const unsigned char* as = stage(kb);
    const unsigned char* bs = as + kGmAStage + wg * 128 * kGmBK;
    detail::wgmma_fence();
#pragma unroll
    for (int k4 = 0; k4 < kGmBK / 32; ++k4)  // a fresh sum per block (scale_d 0 on the first)
      detail::wgmma_m64n128k32_e4m3_ss(sum, detail::sw128_desc(as + k4 * 32), detail::sw128_desc(bs + k4 * 32),
                                       k4 > 0);
    detail::wgmma_commit();
    detail::wgmma_wait<0>();
    detail::wgmma_fence_operands(sum);
    const float fa = sa * sw, fb = sb * sw;  // rows past the segment: a valid row's scale, never written
#pragma unroll
    for (int j = 0; j < 16; ++j) {  // DeepSeek's promotion
      acc[j][0] += sum[j][0] * fa, acc[j][1] += sum[j][1] * fa;
      acc[j][2] += sum[j][2] * fb, acc[j][3] += sum[j][3] * fb;
    }
    sw = nw, sa = na, sb = nb;
  }
  __nv_bfloat16* out = p.c + n0 + wg * 128 + 2 * c;
#pragma unroll
  for (int j = 0; j < 16; ++j) {
    if (ra < end)
      *reinterpret_cast<__nv_bfloat162*>(out + std::size_t(ra) * p.ldc + 8 * j) = __floats2bfloat162_rn(acc[j][0], acc[j][1]);
    if (rb < end)
      *reinterpret_cast<__nv_bfloat162*>(out + std::size_t(rb) * p.ldc + 8 * j) = __floats2bfloat162_rn(acc[j][2], acc[j][3]);
  }
}

}  // namespace troupe::kernels::moe_detail
