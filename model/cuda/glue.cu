#include "model/cuda/glue.hpp"

#include <cmath>

namespace troupe::cuda {
namespace {

constexpr int kThreads = 256;
// Grid-stride loops: enough blocks to fill the GPU, never more than the grid limit.
int blocks_for(std::size_t n) {
  std::size_t b = (n + kThreads - 1) / kThreads;
  return int(b < 65536 ? b : 65536);
}

__device__ std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Box-Muller on two hashed uniforms of element i: one normal per element (no pairing, so any i is independent).
__device__ float hashed_normal(std::uint64_t key, std::size_t i) {
  std::uint64_t a = splitmix64(key + 2 * i), b = splitmix64(key + 2 * i + 1);
  float u1 = (float(a >> 40) + 1.0f) * (1.0f / 16777216.0f);  // (0, 1]
  float u2 = float(b >> 40) * (1.0f / 16777216.0f);
  return sqrtf(-2.0f * logf(u1)) * cospif(2.0f * u2);
}

__global__ void k_fill_normal_bf16(bf16* out, std::size_t n, std::uint64_t key, float stddev) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n; i += std::size_t(gridDim.x) * blockDim.x)
    out[i] = __float2bfloat16(hashed_normal(key, i) * stddev);
}

__global__ void k_fill_normal_f32(float* out, std::size_t n, std::uint64_t key, float stddev) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n; i += std::size_t(gridDim.x) * blockDim.x)
    out[i] = hashed_normal(key, i) * stddev;
}

__global__ void k_fill_normal_fp8(fp8* out, std::size_t n, std::uint64_t key) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n; i += std::size_t(gridDim.x) * blockDim.x)
    out[i] = fp8(fminf(fmaxf(hashed_normal(key, i), -448.0f), 448.0f));
}

__global__ void k_fill_const_bf16(bf16* out, std::size_t n, float v) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n; i += std::size_t(gridDim.x) * blockDim.x)
    out[i] = __float2bfloat16(v);
}

__global__ void k_fill_const_f32(float* out, std::size_t n, float v) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n; i += std::size_t(gridDim.x) * blockDim.x)
    out[i] = v;
}

__global__ void k_dequant(const fp8* w, const float* scale, int rows, int cols, int block, bf16* out) {
  std::size_t n = std::size_t(rows) * cols;
  int scale_cols = (cols + block - 1) / block;
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n; i += std::size_t(gridDim.x) * blockDim.x) {
    int r = int(i / cols), c = int(i % cols);
    out[i] = __float2bfloat16(float(w[i]) * scale[(r / block) * scale_cols + c / block]);
  }
}

// Element type T: uint4 (8 bf16) when the rows allow it. __restrict__ matters: without it every load waits for
// the previous store (src and dst might alias), and one 7168-wide row took 22 us on an H200 (56 serial round
// trips); blockIdx.y splits a row's columns over blocks so a single row still spreads over several SMs.
template <class T>
__global__ void k_gather(const T* __restrict__ src, const std::int32_t* __restrict__ rows, int n, int cols,
                         T* __restrict__ dst) {
  const int c = blockIdx.y * blockDim.x + threadIdx.x;
  if (c >= cols) return;
  for (int r = blockIdx.x; r < n; r += gridDim.x) dst[std::size_t(r) * cols + c] = src[std::size_t(rows[r]) * cols + c];
}

__global__ void k_add_bias(bf16* x, int n, int cols, int stride, const bf16* bias) {
  for (int r = blockIdx.x; r < n; r += gridDim.x)
    for (int c = threadIdx.x; c < cols; c += blockDim.x) {
      bf16& v = x[std::size_t(r) * stride + c];
      v = __float2bfloat16(__bfloat162float(v) + __bfloat162float(bias[c]));
    }
}

__global__ void k_mask(float* logits, int vocab, const std::int32_t* pairs, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) logits[std::size_t(pairs[2 * i]) * vocab + pairs[2 * i + 1]] = -INFINITY;
}

// One block per token: the row's inverse RMS, then one warp per expert at a time over the normed row.
__global__ void k_router(const float* residual, const bf16* norm_w, float eps, int hidden, const float* w, int experts,
                         float* out) {
  __shared__ float partial[32];
  __shared__ float inv;
  const float* x = residual + std::size_t(blockIdx.x) * hidden;
  float ss = 0;
  for (int i = threadIdx.x; i < hidden; i += blockDim.x) ss += x[i] * x[i];
  for (int off = 16; off > 0; off >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, off);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, warps = blockDim.x / 32;
  if (lane == 0) partial[warp] = ss;
  __syncthreads();
  if (threadIdx.x == 0) {
    float t = 0;
    for (int i = 0; i < warps; ++i) t += partial[i];
    inv = 1.0f / sqrtf(t / float(hidden) + eps);
  }
  __syncthreads();
  for (int e = warp; e < experts; e += warps) {
    const float* we = w + std::size_t(e) * hidden;
    float acc = 0;
    for (int i = lane; i < hidden; i += 32) acc += (__bfloat162float(norm_w[i]) * (x[i] * inv)) * we[i];
    for (int off = 16; off > 0; off >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, off);
    if (lane == 0) out[std::size_t(blockIdx.x) * experts + e] = acc;
  }
}

std::uint64_t mix(std::uint64_t seed, std::uint64_t key) { return seed * 0x9e3779b97f4a7c15ull ^ key; }

}  // namespace

void fill_normal_bf16(bf16* out, std::size_t n, std::uint64_t seed, std::uint64_t key, float stddev, cudaStream_t s) {
  if (n) k_fill_normal_bf16<<<blocks_for(n), kThreads, 0, s>>>(out, n, mix(seed, key), stddev);
}
void fill_normal_f32(float* out, std::size_t n, std::uint64_t seed, std::uint64_t key, float stddev, cudaStream_t s) {
  if (n) k_fill_normal_f32<<<blocks_for(n), kThreads, 0, s>>>(out, n, mix(seed, key), stddev);
}
void fill_normal_fp8(fp8* out, std::size_t n, std::uint64_t seed, std::uint64_t key, cudaStream_t s) {
  if (n) k_fill_normal_fp8<<<blocks_for(n), kThreads, 0, s>>>(out, n, mix(seed, key));
}
void fill_const_bf16(bf16* out, std::size_t n, float value, cudaStream_t s) {
  if (n) k_fill_const_bf16<<<blocks_for(n), kThreads, 0, s>>>(out, n, value);
}
void fill_const_f32(float* out, std::size_t n, float value, cudaStream_t s) {
  if (n) k_fill_const_f32<<<blocks_for(n), kThreads, 0, s>>>(out, n, value);
}
void dequant_fp8_block(const fp8* w, const float* scale, int rows, int cols, int block, bf16* out, cudaStream_t s) {
  std::size_t n = std::size_t(rows) * cols;
  if (n) k_dequant<<<blocks_for(n), kThreads, 0, s>>>(w, scale, rows, cols, block, out);
}
void gather_rows_bf16(const bf16* src, const std::int32_t* rows, int n, int cols, bf16* dst, cudaStream_t s) {
  if (!n || !cols) return;
  const bool vec = cols % 8 == 0 && reinterpret_cast<std::uintptr_t>(src) % 16 == 0 &&
                   reinterpret_cast<std::uintptr_t>(dst) % 16 == 0;
  const int units = vec ? cols / 8 : cols, threads = 128;
  const dim3 grid(n < 4096 ? n : 4096, (units + threads - 1) / threads);
  if (vec)
    k_gather<uint4><<<grid, threads, 0, s>>>(reinterpret_cast<const uint4*>(src), rows, n, units,
                                             reinterpret_cast<uint4*>(dst));
  else
    k_gather<bf16><<<grid, threads, 0, s>>>(src, rows, n, units, dst);
}
void add_bias_bf16(bf16* x, int n, int cols, int stride, const bf16* bias, cudaStream_t s) {
  if (n) k_add_bias<<<n < 4096 ? n : 4096, 128, 0, s>>>(x, n, cols, stride, bias);
}
void mask_logits(float* logits, int vocab, const std::int32_t* pairs, int n, cudaStream_t s) {
  if (n) k_mask<<<(n + 127) / 128, 128, 0, s>>>(logits, vocab, pairs, n);
}

void router_logits_f32(const float* residual, const bf16* norm_w, float eps, int n, int hidden, const float* w,
                       int experts, float* out, cudaStream_t s) {
  if (n) k_router<<<n, 256, 0, s>>>(residual, norm_w, eps, hidden, w, experts, out);
}

}  // namespace troupe::cuda
