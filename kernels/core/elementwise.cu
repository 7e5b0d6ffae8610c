// Row-wise and element-wise kernels of kernels/core/ops.hpp. All of them are memory bound: each thread moves
// 16 bytes per access (8 bf16 or 4 float), consecutive threads touch consecutive vectors (coalesced), and
// a scalar path covers shapes or pointers that are not 16-byte aligned.
#include "kernels/core/launch.hpp"
#include "kernels/core/ops.hpp"
#include "kernels/core/pdl.cuh"
#include "kernels/core/vec.cuh"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace troupe::kernels {
namespace {

using detail::Bf16x8;
using detail::aligned16;
using detail::block_sum;

constexpr int kRowThreads = 256;

__global__ void embedding_kernel(const bf16* table, const std::int32_t* ids, int hidden, float* out) {
  const int t = blockIdx.x;
  const bf16* src = table + std::size_t(ids[t]) * hidden;
  float* dst = out + std::size_t(t) * hidden;
  if (hidden % 8 == 0) {
    for (int v = threadIdx.x; v < hidden / 8; v += blockDim.x) {
      float f[8];
      detail::load_bf16x8(src + v * 8, f);
      detail::store_f32x8(dst + v * 8, f);
    }
  } else {
    for (int i = threadIdx.x; i < hidden; i += blockDim.x) dst[i] = __bfloat162float(src[i]);
  }
}

// Vector v of a residual row into a, with x's vector added and the sum stored back when x is not null.
__device__ __forceinline__ void add_residual8(float* r, const bf16* xr, int v, float (&a)[8]) {
  detail::load_f32x8(r + v * 8, a);
  if (!xr) return;
  float b[8];
  detail::load_bf16x8(xr + v * 8, b);
#pragma unroll
  for (int j = 0; j < 8; ++j) a[j] += b[j];
  detail::store_f32x8(r + v * 8, a);
}

// residual += x; out = residual * rsqrt(mean(residual^2) + eps) * weight. The second pass re-reads the
// residual row, which is still in L1/L2 (a 7168-wide float row is 28 KB). Rows of one 8-vector per thread (the
// launch makes them so up to 8192) keep it in registers, and their weights are loaded before the wait: at one token
// the kernel is a chain of dependent loads, and each link taken out of it shortens the decode step.
__global__ void add_rmsnorm_kernel(float* residual, const bf16* x, const bf16* weight, float eps, int hidden,
                                   bf16* out) {
  __shared__ float red[32];
  const bool vec = hidden % 8 == 0, one = vec && hidden / 8 <= int(blockDim.x);
  const int v0 = threadIdx.x;
  const bool mine = one && v0 < hidden / 8;
  float w[8];
  if (mine) detail::load_bf16x8(weight + v0 * 8, w);  // a weight: no earlier kernel writes it (pdl.cuh)
  detail::pdl_wait();     // residual and x come from the kernels before (pdl.cuh)
  detail::pdl_trigger();  // a decode GEMV may follow: let it load its weights meanwhile
  const std::size_t row = blockIdx.x;
  float* r = residual + row * hidden;
  const bf16* xr = x ? x + row * hidden : nullptr;
  bf16* o = out + row * hidden;
  float ss = 0;
  if (one) {
    float a[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    if (mine) add_residual8(r, xr, v0, a);
    return detail::rmsnorm_vec_finish(a, w, mine, eps, hidden, o, nullptr, red);
  }
  if (vec) {
    for (int v = threadIdx.x; v < hidden / 8; v += blockDim.x) {
      float a[8];
      add_residual8(r, xr, v, a);
#pragma unroll
      for (int j = 0; j < 8; ++j) ss += a[j] * a[j];
    }
  } else {
    for (int i = threadIdx.x; i < hidden; i += blockDim.x) {
      float a = r[i];
      if (xr) r[i] = a = a + __bfloat162float(xr[i]);
      ss += a * a;
    }
  }
  const float inv = rsqrtf(block_sum(ss, red) / float(hidden) + eps);
  if (vec) {
    for (int v = threadIdx.x; v < hidden / 8; v += blockDim.x) {
      float a[8], w[8];
      detail::load_f32x8(r + v * 8, a);
      detail::load_bf16x8(weight + v * 8, w);
#pragma unroll
      for (int j = 0; j < 8; ++j) a[j] = a[j] * inv * w[j];
      detail::store_bf16x8(o + v * 8, a);
    }
  } else {
    for (int i = threadIdx.x; i < hidden; i += blockDim.x)
      o[i] = __float2bfloat16(r[i] * inv * __bfloat162float(weight[i]));
  }
}

__global__ void rmsnorm_kernel(const bf16* x, int x_stride, const bf16* weight, float eps, int dim, bf16* out,
                               int out_stride, bool vec) {
  __shared__ float red[32];
  detail::pdl_wait();
  detail::pdl_trigger();
  const std::size_t row = blockIdx.x;
  detail::rmsnorm_row(x + row * x_stride, weight, eps, dim, out + row * out_stride, nullptr, vec, red);
}

// blockIdx.x: the token; blockIdx.y * blockDim.x + threadIdx.x: one (head, pair). cos_sin row p: [cos(p f_0) ..
// cos(p f_{h-1}) | sin(...)]. The (head, pair) items spread over blocks instead of looping in one: in place, each
// iteration's loads waited for the previous stores (x may alias), and R1's 128-head q rope (16 iterations) took
// 8-9 us at one token.
__global__ void rope_kernel(bf16* x, int heads, int row_stride, int head_stride, int offset, int rot_dim,
                            const std::int32_t* positions, const float* cos_sin, bool interleaved) {
  const int t = blockIdx.x, half = rot_dim / 2;
  const float* cs = cos_sin + std::size_t(positions[t]) * rot_dim;
  bf16* row = x + std::size_t(t) * row_stride + offset;
  for (int k = blockIdx.y * blockDim.x + threadIdx.x; k < heads * half; k += gridDim.y * blockDim.x) {
    const int h = k / half, i = k % half;
    bf16* head = row + std::size_t(h) * head_stride;
    detail::rope_pair(head, head, nullptr, cs, i, half, interleaved);
  }
}

__device__ __forceinline__ float silu(float g) { return g / (1.0f + expf(-g)); }

__global__ void silu_mul_kernel(const bf16* gate_up, int n, int inter, bf16* out) {
  detail::pdl_trigger();
  const std::size_t per_row = inter % 8 == 0 ? inter / 8 : inter;
  const std::size_t total = per_row * n;
  for (std::size_t k = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; k < total;
       k += std::size_t(gridDim.x) * blockDim.x) {
    const std::size_t t = k / per_row, c = k % per_row;
    const bf16* g = gate_up + t * 2 * inter;
    if (inter % 8 == 0) {
      float a[8], b[8];
      detail::load_bf16x8(g + c * 8, a);
      detail::load_bf16x8(g + inter + c * 8, b);
#pragma unroll
      for (int j = 0; j < 8; ++j) a[j] = silu(a[j]) * b[j];
      detail::store_bf16x8(out + t * inter + c * 8, a);
    } else {
      out[t * inter + c] = __float2bfloat16(silu(__bfloat162float(g[c])) * __bfloat162float(g[inter + c]));
    }
  }
}

// 16 threads per 128-value group, 8 values (16 bytes) each; the group's amax is reduced across the 16 lanes.
__global__ void quant_fp8_kernel(const bf16* x, std::size_t groups, fp8* q, float* scales) {
  detail::pdl_wait();
  detail::pdl_trigger();
  const std::size_t tid = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x;
  const std::size_t g = tid / 16;
  const bool live = g < groups;
  float a[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  if (live) detail::load_bf16x8(x + tid * 8, a);
  const float scale = detail::group128_fp8_scale(a);
  if (!live) return;
  if (tid % 16 == 0) scales[g] = scale;
  detail::store_fp8x8(a, 1.0f / scale, q + tid * 8);
}

__global__ void to_bf16_kernel(const float* x, std::size_t count, bf16* out, bool vec) {
  const std::size_t stride = std::size_t(gridDim.x) * blockDim.x;
  std::size_t k = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x;
  if (vec) {
    for (; k < count / 8; k += stride) {
      float a[8];
      detail::load_f32x8(x + k * 8, a);
      detail::store_bf16x8(out + k * 8, a);
    }
  } else {
    for (; k < count; k += stride) out[k] = __float2bfloat16(x[k]);
  }
}

// One thread per 8 elements (or per element when misaligned) of one token's K and V rows.
__global__ void cache_write_kernel(const bf16* k, int k_stride, const bf16* v, int v_stride, int kv_dim,
                                   const std::int32_t* slot_mapping, int num_tokens, bf16* k_cache, bf16* v_cache,
                                   int width) {
  const int per_row = kv_dim / width;
  const std::size_t total = std::size_t(num_tokens) * per_row;
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < total;
       i += std::size_t(gridDim.x) * blockDim.x) {
    const int t = int(i / per_row), c = int(i % per_row) * width;
    const std::int32_t slot = slot_mapping[t];
    if (slot < 0) continue;  // a padding token (vLLM's convention): nothing to store
    const std::size_t dst = std::size_t(slot) * kv_dim + c;
    if (width == 8) {
      *reinterpret_cast<uint4*>(k_cache + dst) = *reinterpret_cast<const uint4*>(k + std::size_t(t) * k_stride + c);
      *reinterpret_cast<uint4*>(v_cache + dst) = *reinterpret_cast<const uint4*>(v + std::size_t(t) * v_stride + c);
    } else {
      k_cache[dst] = k[std::size_t(t) * k_stride + c];
      v_cache[dst] = v[std::size_t(t) * v_stride + c];
    }
  }
}

int grid_for(std::size_t work, int threads) {
  const std::size_t blocks = (work + threads - 1) / threads;
  return int(blocks < 65536 ? (blocks ? blocks : 1) : 65536);
}

}  // namespace

void embedding(const bf16* table, const std::int32_t* ids, int n, int hidden, float* residual_out, cudaStream_t s) {
  if (n <= 0) return;
  const bool vec = hidden % 8 == 0 && aligned16(table) && aligned16(residual_out);
  if (!vec && hidden % 8 == 0) throw std::invalid_argument("embedding: table/output not 16-byte aligned");
  embedding_kernel<<<n, 128, 0, s>>>(table, ids, hidden, residual_out);
  check_launch("embedding");
}

void add_rmsnorm(float* residual, const bf16* x, const bf16* weight, float eps, int n, int hidden, bf16* out,
                 cudaStream_t s) {
  if (n <= 0) return;
  if (hidden % 8 == 0 && !(aligned16(residual) && aligned16(weight) && aligned16(out) && (!x || aligned16(x))))
    throw std::invalid_argument("add_rmsnorm: pointers must be 16-byte aligned");
  // One 16-byte vector per thread where the row allows (R1's 7168: 896 threads): with 256 threads each looped
  // 3.5 times, every load waiting for the previous residual store (6.2 us per call at one token).
  const int threads = hidden % 8 == 0 ? std::min(1024, std::max(kRowThreads, (hidden / 8 + 31) / 32 * 32)) : kRowThreads;
  launch_pdl(add_rmsnorm_kernel, dim3(n), dim3(threads), 0, s, "add_rmsnorm", residual, x, weight, eps, hidden, out);
}

void rmsnorm(const bf16* x, int x_stride, const bf16* weight, float eps, int n, int dim, bf16* out, int out_stride,
             cudaStream_t s) {
  if (n <= 0) return;
  const bool vec = dim % 8 == 0 && x_stride % 8 == 0 && out_stride % 8 == 0 && aligned16(x) && aligned16(weight) &&
                   aligned16(out);
  launch_pdl(rmsnorm_kernel, dim3(n), dim3(dim >= 1024 ? kRowThreads : 64), 0, s, "rmsnorm", x, x_stride, weight, eps,
             dim, out, out_stride, vec);
}

void rope(bf16* x, int n, int heads, int row_stride, int head_stride, int offset, int rot_dim,
          const std::int32_t* positions, const float* cos_sin, bool interleaved, cudaStream_t s) {
  if (n <= 0) return;
  if (rot_dim % 2 != 0) throw std::invalid_argument("rope: rot_dim must be even");
  const int work = heads * rot_dim / 2, threads = work >= 256 ? 256 : (work + 31) / 32 * 32;
  const dim3 grid(n, std::min((work + threads - 1) / threads, 65535));
  rope_kernel<<<grid, threads, 0, s>>>(x, heads, row_stride, head_stride, offset, rot_dim, positions, cos_sin,
                                       interleaved);
  check_launch("rope");
}

void silu_mul(const bf16* gate_up, int n, int inter, bf16* out, cudaStream_t s) {
  if (n <= 0) return;
  if (inter % 8 == 0 && !(aligned16(gate_up) && aligned16(out)))
    throw std::invalid_argument("silu_mul: pointers must be 16-byte aligned");
  const std::size_t work = std::size_t(n) * (inter % 8 == 0 ? inter / 8 : inter);
  silu_mul_kernel<<<grid_for(work, 256), 256, 0, s>>>(gate_up, n, inter, out);
  check_launch("silu_mul");
}

void quant_fp8_group128(const bf16* x, int n, int k, fp8* q, float* scales, cudaStream_t s) {
  if (n <= 0) return;
  if (k % 128 != 0) throw std::invalid_argument("quant_fp8_group128: k must be a multiple of 128");
  if (!aligned16(x) || reinterpret_cast<std::uintptr_t>(q) % 8 != 0)
    throw std::invalid_argument("quant_fp8_group128: x must be 16-byte and q 8-byte aligned");
  const std::size_t groups = std::size_t(n) * (k / 128);
  launch_pdl(quant_fp8_kernel, dim3(unsigned((groups * 16 + 255) / 256)), dim3(256), 0, s, "quant_fp8_group128", x,
             groups, q, scales);
}

void to_bf16(const float* x, std::size_t count, bf16* out, cudaStream_t s) {
  if (count == 0) return;
  const bool vec = count % 8 == 0 && aligned16(x) && aligned16(out);
  to_bf16_kernel<<<grid_for(vec ? count / 8 : count, 256), 256, 0, s>>>(x, count, out, vec);
  check_launch("to_bf16");
}

void cache_write_kv(const bf16* k, int k_stride, const bf16* v, int v_stride, int num_kv_heads, int head_dim,
                    const AttnBatch& b, bf16* k_cache, bf16* v_cache, cudaStream_t s) {
  if (b.num_tokens <= 0) return;
  const int kv_dim = num_kv_heads * head_dim;
  const bool vec = kv_dim % 8 == 0 && k_stride % 8 == 0 && v_stride % 8 == 0 && aligned16(k) && aligned16(v) &&
                   aligned16(k_cache) && aligned16(v_cache);
  const int width = vec ? 8 : 1;
  cache_write_kernel<<<grid_for(std::size_t(b.num_tokens) * kv_dim / width, 256), 256, 0, s>>>(
      k, k_stride, v, v_stride, kv_dim, b.slot_mapping, b.num_tokens, k_cache, v_cache, width);
  check_launch("cache_write_kv");
}

}  // namespace troupe::kernels
