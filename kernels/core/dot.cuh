#pragma once
// Dot products of one 16-byte weight chunk with bf16 activations, in float32 (or, dot_fp8x16_f16, FP8 weights
// against pre-scaled f16 activations in f16x2): the inner step of the GEMV kernels (kernels/gemm/gemv.cu,
// kernels/moe/moe_gemv.cuh), where m = 1 and a tensor-core tile would be 15/16 zeros. Device code only.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <cstdint>

namespace troupe::kernels::detail {

// L2 eviction policies for weight loads (the .L2::cache_hint operand).
__device__ __forceinline__ std::uint64_t l2_policy(bool evict_first) {
  std::uint64_t p = 0;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  if (evict_first)
    asm("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;" : "=l"(p));
  else
    asm("createpolicy.fractional.L2::evict_normal.b64 %0, 1.0;" : "=l"(p));
#endif
  return p;
}

// A weight chunk read once: kept out of L1 so that the activations (read by every warp of the SM) stay there, and
// with an L2 eviction policy (l2_policy; evict-first by default), so that what is read again soon stays in L2 while
// the weights stream past. Measured on R1 at batch 1 (docs/BENCHMARKS.md, session 8): the MoE layer 0.230-0.235 ms
// with plain loads, 0.208-0.214 with evict-first; the gain is the small-m kernel's (its split-K partials, summed by
// the last block of a row tile), the GEMVs, W_UK / W_UV and the MoE down GEMV are indifferent to it.
__device__ __forceinline__ uint4 ld_stream16(const void* p, std::uint64_t policy) {
  uint4 v;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm("ld.global.nc.L1::no_allocate.L2::cache_hint.v4.u32 {%0, %1, %2, %3}, [%4], %5;"
      : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
      : "l"(p), "l"(policy));
#else
  v = __ldg(static_cast<const uint4*>(p));
#endif
  return v;
}
__device__ __forceinline__ uint4 ld_stream16(const void* p) { return ld_stream16(p, l2_policy(true)); }

// The same without an L2 policy: the MoE gate/up GEMV's weights, where evict-first measured slower (~20 us on R1's
// 264 MB at batch 1) and this ~3 us faster than __ldg (BENCHMARKS.md, session 8).
__device__ __forceinline__ uint4 ld_nc16(const void* p) {
  uint4 v;
  asm("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
      : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
      : "l"(p));
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
