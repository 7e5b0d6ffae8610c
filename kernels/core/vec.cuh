#pragma once
// 16-byte vector loads and stores and block reductions shared by the core kernels (device code only).
#include <cuda_bf16.h>
#include <cuda_fp8.h>

#include <cstdint>

namespace troupe::kernels::detail {

struct alignas(16) Bf16x8 {
  __nv_bfloat162 h[4];
};

inline bool aligned16(const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 16 == 0; }

__device__ __forceinline__ void load_bf16x8(const __nv_bfloat16* p, float (&f)[8]) {
  const Bf16x8 v = *reinterpret_cast<const Bf16x8*>(p);
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    const float2 t = __bfloat1622float2(v.h[j]);
    f[2 * j] = t.x;
    f[2 * j + 1] = t.y;
  }
}

__device__ __forceinline__ void store_bf16x8(__nv_bfloat16* p, const float (&f)[8]) {
  Bf16x8 v;
#pragma unroll
  for (int j = 0; j < 4; ++j) v.h[j] = __floats2bfloat162_rn(f[2 * j], f[2 * j + 1]);
  *reinterpret_cast<Bf16x8*>(p) = v;
}

__device__ __forceinline__ void load_f32x8(const float* p, float (&f)[8]) {
  const float4 a = reinterpret_cast<const float4*>(p)[0], b = reinterpret_cast<const float4*>(p)[1];
  f[0] = a.x, f[1] = a.y, f[2] = a.z, f[3] = a.w, f[4] = b.x, f[5] = b.y, f[6] = b.z, f[7] = b.w;
}

__device__ __forceinline__ void store_f32x8(float* p, const float (&f)[8]) {
  reinterpret_cast<float4*>(p)[0] = make_float4(f[0], f[1], f[2], f[3]);
  reinterpret_cast<float4*>(p)[1] = make_float4(f[4], f[5], f[6], f[7]);
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Sum over the block (blockDim.x a multiple of 32); every thread gets the result. red: 32 floats of smem.
__device__ __forceinline__ float block_sum(float v, float* red) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  v = warp_sum(v);
  __syncthreads();  // red may still be read by a previous call
  if (lane == 0) red[warp] = v;
  __syncthreads();
  v = lane < warps ? red[lane] : 0.0f;
  return warp_sum(v);
}

// RMSNorm of one row of `dim` values by the whole block: out (and out2 when not null) = x * rsqrt(mean(x^2) + eps)
// * w, float32 inside. vec: 16-byte loads and stores (dim % 8 == 0, aligned rows). red: 32 floats of smem.
__device__ __forceinline__ void rmsnorm_row(const __nv_bfloat16* x, const __nv_bfloat16* w, float eps, int dim,
                                            __nv_bfloat16* out, __nv_bfloat16* out2, bool vec, float* red) {
  float ss = 0;
  if (vec) {
    for (int v = threadIdx.x; v < dim / 8; v += blockDim.x) {
      float a[8];
      load_bf16x8(x + v * 8, a);
#pragma unroll
      for (int j = 0; j < 8; ++j) ss += a[j] * a[j];
    }
  } else {
    for (int i = threadIdx.x; i < dim; i += blockDim.x) ss += __bfloat162float(x[i]) * __bfloat162float(x[i]);
  }
  const float inv = rsqrtf(block_sum(ss, red) / float(dim) + eps);
  if (vec) {
    for (int v = threadIdx.x; v < dim / 8; v += blockDim.x) {
      float a[8], g[8];
      load_bf16x8(x + v * 8, a);
      load_bf16x8(w + v * 8, g);
#pragma unroll
      for (int j = 0; j < 8; ++j) a[j] = a[j] * inv * g[j];
      store_bf16x8(out + v * 8, a);
      if (out2) store_bf16x8(out2 + v * 8, a);
    }
  } else {
    for (int i = threadIdx.x; i < dim; i += blockDim.x) {
      const __nv_bfloat16 o = __float2bfloat16(__bfloat162float(x[i]) * inv * __bfloat162float(w[i]));
      out[i] = o;
      if (out2) out2[i] = o;
    }
  }
}

// The end of an RMSNorm of a row held one 8-vector per thread, elements [8 t, 8 t + 8) in thread t (a: its values,
// zeros where !mine; w: its weights, loadable before a programmatic wait): out (and out2 when not null) = a *
// rsqrt(mean(a^2) + eps) * w, vectors [8 t, 8 t + 8). Every thread of the block calls it. rmsnorm_row's arithmetic
// (float32, then bf16); the sum of squares is grouped by thread, so its last bits follow the block size.
__device__ __forceinline__ void rmsnorm_vec_finish(float (&a)[8], const float (&w)[8], bool mine, float eps, int dim,
                                                   __nv_bfloat16* out, __nv_bfloat16* out2, float* red) {
  float ss = 0;
#pragma unroll
  for (int j = 0; j < 8; ++j) ss += a[j] * a[j];
  const float inv = rsqrtf(block_sum(ss, red) / float(dim) + eps);
  if (!mine) return;
#pragma unroll
  for (int j = 0; j < 8; ++j) a[j] = a[j] * inv * w[j];
  store_bf16x8(out + threadIdx.x * 8, a);
  if (out2) store_bf16x8(out2 + threadIdx.x * 8, a);
}

// The rotated pair i of a rope_dim-wide part (cos_sin row cs: cos | sin), from src into dst (and dst2 when not
// null); src may be dst (in place: both values are read before either is written).
__device__ __forceinline__ void rope_pair(const __nv_bfloat16* src, __nv_bfloat16* dst, __nv_bfloat16* dst2,
                                          const float* cs, int i, int half, bool interleaved) {
  const int ia = interleaved ? 2 * i : i, ib = interleaved ? 2 * i + 1 : i + half;
  const float a = __bfloat162float(src[ia]), b = __bfloat162float(src[ib]), c = cs[i], s = cs[half + i];
  const __nv_bfloat16 oa = __float2bfloat16(a * c - b * s), ob = __float2bfloat16(b * c + a * s);
  dst[ia] = oa, dst[ib] = ob;
  if (dst2) dst2[ia] = oa, dst2[ib] = ob;
}

// A GEMM output element: bf16 or float32, written or (accumulate) added to.
__device__ __forceinline__ void store_out(void* c, bool out_f32, bool accumulate, std::size_t i, float v) {
  if (out_f32) {
    float* f = static_cast<float*>(c);
    f[i] = accumulate ? f[i] + v : v;
  } else {
    __nv_bfloat16* b = static_cast<__nv_bfloat16*>(c);
    b[i] = __float2bfloat16(accumulate ? __bfloat162float(b[i]) + v : v);
  }
}

// The e4m3 scale of a 1x128 activation group that 16 adjacent lanes hold, 8 values each: the amax reduced over
// those lanes, clamped away from zero (DeepSeek / vLLM: an all-zero group gets a finite scale), over 448. Every
// lane of the warp must call it (the shuffles), live or not.
__device__ __forceinline__ float group128_fp8_scale(const float (&v)[8]) {
  float amax = 0;
#pragma unroll
  for (int j = 0; j < 8; ++j) amax = fmaxf(amax, fabsf(v[j]));
#pragma unroll
  for (int o = 8; o > 0; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
  return fmaxf(amax, 1e-10f) / 448.0f;
}

// v * inv as 8 e4m3 bytes (saturating), stored to q (8-byte aligned).
__device__ __forceinline__ void store_fp8x8(const float (&v)[8], float inv, __nv_fp8_e4m3* q) {
  alignas(8) __nv_fp8_storage_t b[8];
#pragma unroll
  for (int j = 0; j < 8; ++j) b[j] = __nv_cvt_float_to_fp8(v[j] * inv, __NV_SATFINITE, __NV_E4M3);
  *reinterpret_cast<uint2*>(q) = *reinterpret_cast<const uint2*>(b);
}

}  // namespace troupe::kernels::detail
