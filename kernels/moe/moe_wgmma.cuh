#pragma once
// The FP8 experts' GEMMs of the MoE prefill path (moe_lt.cu) as one grouped launch on wgmma (sm_90a) instead of
// one cuBLASLt call per expert: C[rows of expert e] = A[rows] W_e^T with DeepSeek's block scales (A: one float per
// row and 128-wide k block, token-major within each expert's segment as lt_quant_kernel writes them; W: one per
// 128 x 128 block). Work items ("tiles", built on the host from the segment offsets): 64 rows of one expert; the
// grid is (N / 256, tiles). Two warpgroups share the 64-row A tile, each computes 128 of the CTA's 256 columns.
//
//   per k block of 128 (one 128-byte swizzle atom row per A / B row; stages of 8 + 32 KB, kGmStages deep, cp.async):
//     tmp (64 x 128, per warpgroup) = 4 wgmma m64n128k32 e4m3          (a fresh float32 sum per block)
//     acc += tmp * a_scale[row][kb] * w_scale[n block][kb]             (DeepSeek's promotion, in registers)
//
// Rows past the segment's end read as zeros and are not written.
#include "kernels/core/mma.cuh"
#include "kernels/core/wgmma.cuh"

#include <cuda_bf16.h>
#include <cuda_fp8.h>

#include <cstdint>

namespace troupe::kernels::moe_detail {

constexpr int kGmBM = 64, kGmBN = 256, kGmBK = 128, kGmStages = 4, kGmThreads = 256;
constexpr int kGmAStage = kGmBM * kGmBK, kGmBStage = kGmBN * kGmBK, kGmStage = kGmAStage + kGmBStage;
constexpr int kGmSmem = kGmStages * kGmStage + 1024;  // + room to align the base to 1024

struct GmTile {
  std::int32_t expert, row0;  // rows [row0, min(row0 + 64, end of the expert's segment))
};

struct GmArgs {
  const __nv_fp8_e4m3* a;  // [rows, K], row stride lda
  int lda;
  const float* a_scale;         // at seg * KB + kb * m + (row - seg) (seg / m: the expert's segment start / rows)
  const std::int32_t* offsets;  // [E + 1] segment starts
  const __nv_fp8_e4m3* w;       // [E][N][K]
  const float* w_scale;         // [E][N / 128][K / 128]
  __nv_bfloat16* c;             // [rows, N], row stride ldc
  int ldc;
  const GmTile* tiles;
  int N, K;
};

__global__ void __launch_bounds__(kGmThreads, 1) moe_fp8_wgmma_kernel(GmArgs p) {
  extern __shared__ unsigned char smem_raw[];
  unsigned char* smem = reinterpret_cast<unsigned char*>((reinterpret_cast<std::uintptr_t>(smem_raw) + 1023) &
                                                         ~std::uintptr_t(1023));
  const GmTile t = p.tiles[blockIdx.y];
  const int n0 = blockIdx.x * kGmBN, KB = p.K / kGmBK;
  const int seg = p.offsets[t.expert], m = p.offsets[t.expert + 1] - seg, end = seg + m;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, wg = warp / 4, g = lane / 4, c = lane % 4;
  const __nv_fp8_e4m3* wb = p.w + (std::size_t(t.expert) * p.N + n0) * p.K;
  auto stage = [&](int s) { return smem + s * kGmStage; };
  auto load = [&](int kb, int s) {  // A rows then B rows, 8 chunks of 16 bytes each
    unsigned char* as = stage(s);
    unsigned char* bs = as + kGmAStage;
    for (int i = threadIdx.x; i < (kGmBM + kGmBN) * 8; i += kGmThreads) {
      const int r = i / 8, ch = i % 8;
      if (r < kGmBM) {
        const int row = t.row0 + r;
        const bool valid = row < end;
        detail::cp_async16(as + detail::sw128_chunk(r, ch),
                           p.a + std::size_t(valid ? row : t.row0) * p.lda + kb * kGmBK + ch * 16, valid);
      } else {
        const int rb = r - kGmBM;
        detail::cp_async16(bs + detail::sw128_chunk(rb, ch), wb + std::size_t(rb) * p.K + kb * kGmBK + ch * 16, true);
      }
    }
  };
  for (int s = 0; s < kGmStages - 1; ++s) {  // one commit group per stage, empty ones included: uniform counting
    if (s < KB) load(s, s);
    detail::cp_async_commit();
  }
  const int ra = t.row0 + (warp % 4) * 16 + g, rb = ra + 8;  // the thread's two rows (both warpgroups: same rows)
  const float* wsc = p.w_scale + (std::size_t(t.expert) * (p.N / 128) + n0 / 128 + wg) * KB;
  float acc[16][4];
#pragma unroll
  for (int j = 0; j < 16; ++j) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.f;
  for (int kb = 0; kb < KB; ++kb) {
    detail::cp_async_wait<kGmStages - 2>();  // stage kb has landed
    detail::fence_proxy_async();
    __syncthreads();  // ... for every thread; and stage kb - 1, refilled next, is consumed by all
    if (kb + kGmStages - 1 < KB) load(kb + kGmStages - 1, (kb + kGmStages - 1) % kGmStages);
    detail::cp_async_commit();
    const unsigned char* as = stage(kb % kGmStages);
    const unsigned char* bs = as + kGmAStage + wg * 128 * kGmBK;
    float tmp[16][4];
#pragma unroll
    for (int j = 0; j < 16; ++j) tmp[j][0] = tmp[j][1] = tmp[j][2] = tmp[j][3] = 0.f;
    detail::wgmma_fence();
#pragma unroll
    for (int k4 = 0; k4 < kGmBK / 32; ++k4)
      detail::wgmma_m64n128k32_e4m3_ss(tmp, detail::sw128_desc(as + k4 * 32), detail::sw128_desc(bs + k4 * 32), 1);
    detail::wgmma_commit();
    detail::wgmma_wait<0>();
    detail::wgmma_fence_operands(tmp);
    const float sb = __ldg(wsc + kb);
    const float sa = ra < end ? __ldg(p.a_scale + std::size_t(seg) * KB + std::size_t(kb) * m + (ra - seg)) * sb : 0.f;
    const float sb2 = rb < end ? __ldg(p.a_scale + std::size_t(seg) * KB + std::size_t(kb) * m + (rb - seg)) * sb : 0.f;
#pragma unroll
    for (int j = 0; j < 16; ++j) {
      acc[j][0] += tmp[j][0] * sa, acc[j][1] += tmp[j][1] * sa;
      acc[j][2] += tmp[j][2] * sb2, acc[j][3] += tmp[j][3] * sb2;
    }
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
