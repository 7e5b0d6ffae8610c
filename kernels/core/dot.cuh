#pragma once
// Dot products of one 16-byte weight chunk with bf16 activations, in float32 (or, dot_fp8x16_f16, FP8 weights
// against pre-scaled f16 activations in f16x2): the inner step of the GEMV kernels (kernels/gemm/gemv.cu,
// kernels/moe/moe_gemv.cuh), where m = 1 and a tensor-core tile would be 15/16 zeros. Device code only.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <cstdint>

namespace troupe::kernels::detail {

// A weight chunk read once: kept out of L1 so that the activations (read by every warp of the SM) stay there,
// and first in line for eviction from L2, so that the weights l2_prefetch (l2_prefetch.hpp) brought in for the
// next kernels outlive the hundreds of MB an expert GEMV streams past them.
__device__ __forceinline__ uint4 ld_stream16(const void* p) {
  uint4 v;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  std::uint64_t policy;
  asm("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;" : "=l"(policy));
  asm("ld.global.nc.L1::no_allocate.L2::cache_hint.v4.u32 {%0, %1, %2, %3}, [%4], %5;"
      : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
      : "l"(p), "l"(policy));
#else
  asm("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
      : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
      : "l"(p));
#endif
  return v;
}

// 16 e4m3 weights . 16 bf16 activations (x0: the first 8, x1: the next 8).
__device__ __forceinline__ float dot_fp8x16(const uint4& w, const uint4& x0, const uint4& x1) {
  const __nv_fp8x2_storage_t* wp = reinterpret_cast<const __nv_fp8x2_storage_t*>(&w);
  const __nv_bfloat162* xa = reinterpret_cast<const __nv_bfloat162*>(&x0);
  const __nv_bfloat162* xb = reinterpret_cast<const __nv_bfloat162*>(&x1);
  float acc = 0.f;
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    const float2 wf = __half22float2(__half2(__nv_cvt_fp8x2_to_halfraw2(wp[i], __NV_E4M3)));
    const float2 xf = __bfloat1622float2(i < 4 ? xa[i] : xb[i - 4]);
    acc = fmaf(wf.x, xf.x, fmaf(wf.y, xf.y, acc));
  }
  return acc;
}

// Activations for dot_fp8x16_f16: x * 2^-8 in f16, clamped to f16's range. The 2^-8 keeps products with e4m3
// weights (|w| <= 448) and their sums of 8 inside f16 for |x| up to ~4600; x below 2^-6 lose bits to f16
// subnormals, where their terms are that small too.
constexpr float kF16XScale = 1.f / 256.f;
__device__ __forceinline__ uint4 f16_scaled8(const uint4& x) {  // 8 bf16 -> 8 such f16
  const __nv_bfloat162* b = reinterpret_cast<const __nv_bfloat162*>(&x);
  uint4 r;
  __half2* h = reinterpret_cast<__half2*>(&r);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 f = __bfloat1622float2(b[i]);
    h[i] = __floats2half2_rn(fminf(fmaxf(f.x * kF16XScale, -65504.f), 65504.f),
                             fminf(fmaxf(f.y * kF16XScale, -65504.f), 65504.f));
  }
  return r;
}

// 16 e4m3 weights . 16 f16_scaled activations (x0: the first 8, x1: the next 8), products summed in f16x2: 8
// conversions and 8 HFMA2 where dot_fp8x16 spends ~60 instructions a chunk. The result is still scaled by 2^-8
// (multiply by 1 / kF16XScale once per output).
__device__ __forceinline__ float dot_fp8x16_f16(const uint4& w, const uint4& x0, const uint4& x1) {
  const __nv_fp8x2_storage_t* wp = reinterpret_cast<const __nv_fp8x2_storage_t*>(&w);
  const __half2* xa = reinterpret_cast<const __half2*>(&x0);
  const __half2* xb = reinterpret_cast<const __half2*>(&x1);
  __half2 acc = __float2half2_rn(0.f);
#pragma unroll
  for (int i = 0; i < 8; ++i)
    acc = __hfma2(__half2(__nv_cvt_fp8x2_to_halfraw2(wp[i], __NV_E4M3)), i < 4 ? xa[i] : xb[i - 4], acc);
  const float2 f = __half22float2(acc);
  return f.x + f.y;
}

// 8 bf16 weights . 8 bf16 activations.
__device__ __forceinline__ float dot_bf16x8(const uint4& w, const uint4& x) {
  const __nv_bfloat162* wb = reinterpret_cast<const __nv_bfloat162*>(&w);
  const __nv_bfloat162* xb = reinterpret_cast<const __nv_bfloat162*>(&x);
  float acc = 0.f;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 wf = __bfloat1622float2(wb[i]), xf = __bfloat1622float2(xb[i]);
    acc = fmaf(wf.x, xf.x, fmaf(wf.y, xf.y, acc));
  }
  return acc;
}

}  // namespace troupe::kernels::detail
