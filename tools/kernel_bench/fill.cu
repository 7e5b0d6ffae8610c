// GPU-side fills for the benchmark's operands: a counter-based hash per element, so 500 MB weights take
// milliseconds and every run sees the same data.
#include "tools/kernel_bench/kernel_bench.hpp"

#include <cuda_bf16.h>

#include <stdexcept>
#include <string>

namespace troupe::kernel_bench {
namespace {

__device__ __forceinline__ std::uint32_t hash(std::uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return std::uint32_t((x ^ (x >> 31)) >> 32);
}
__device__ __forceinline__ float unit(std::uint64_t i, std::uint64_t seed) {
  return float(hash(i * 0x9e3779b97f4a7c15ull + seed) >> 8) * (1.0f / 16777216.0f);
}

__global__ void bf16_kernel(__nv_bfloat16* p, std::size_t n, float lo, float hi, std::uint64_t seed) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n; i += std::size_t(gridDim.x) * blockDim.x)
    p[i] = __float2bfloat16(lo + (hi - lo) * unit(i, seed));
}
__global__ void fp8_kernel(std::uint8_t* p, std::size_t n, std::uint64_t seed) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n; i += std::size_t(gridDim.x) * blockDim.x) {
    const std::uint32_t x = hash(i * 0x9e3779b97f4a7c15ull + seed);
    p[i] = std::uint8_t(((x & 1) << 7) | ((3 + (x >> 1) % 8) << 3) | ((x >> 4) & 7));
  }
}
__global__ void f32_kernel(float* p, std::size_t n, float lo, float hi, std::uint64_t seed) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n; i += std::size_t(gridDim.x) * blockDim.x)
    p[i] = lo + (hi - lo) * unit(i, seed);
}
__global__ void i32_kernel(std::int32_t* p, std::size_t n, int lo, int hi, std::uint64_t seed) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n; i += std::size_t(gridDim.x) * blockDim.x)
    p[i] = lo + int(hash(i * 0x9e3779b97f4a7c15ull + seed) % std::uint32_t(hi - lo + 1));
}

void done(const char* what) {
  const cudaError_t e = cudaDeviceSynchronize();
  if (e != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(e));
}

}  // namespace

void fill_bf16(void* p, std::size_t n, float lo, float hi, std::uint64_t seed) {
  bf16_kernel<<<1024, 256>>>(static_cast<__nv_bfloat16*>(p), n, lo, hi, seed);
  done("fill_bf16");
}
void fill_fp8(void* p, std::size_t n, std::uint64_t seed) {
  fp8_kernel<<<1024, 256>>>(static_cast<std::uint8_t*>(p), n, seed);
  done("fill_fp8");
}
void fill_f32(float* p, std::size_t n, float lo, float hi, std::uint64_t seed) {
  f32_kernel<<<1024, 256>>>(p, n, lo, hi, seed);
  done("fill_f32");
}
void fill_i32(std::int32_t* p, std::size_t n, int lo, int hi, std::uint64_t seed) {
  i32_kernel<<<1024, 256>>>(p, n, lo, hi, seed);
  done("fill_i32");
}

}  // namespace troupe::kernel_bench
