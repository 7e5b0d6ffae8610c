#include "kernels/core/l2_prefetch.hpp"

#include "kernels/core/launch.hpp"

#include <algorithm>
#include <cstdint>

namespace troupe::kernels {
namespace {

constexpr std::size_t kChunk = 32 << 10;  // bytes per bulk prefetch instruction
constexpr int kThreads = 32;
constexpr int kMaxBlocks = 64;  // one SM's copy engine issues a few hundred GB/s of requests: spread them

struct Ranges {
  const std::uint8_t* p[kMaxL2Ranges];
  std::size_t bytes[kMaxL2Ranges];
  int n;
};

__global__ void __launch_bounds__(kThreads) l2_prefetch_kernel(Ranges r) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  const std::size_t stride = std::size_t(gridDim.x) * kThreads;
  const std::size_t me = std::size_t(blockIdx.x) * kThreads + threadIdx.x;
  for (int i = 0; i < r.n; ++i) {
    const std::size_t chunks = (r.bytes[i] + kChunk - 1) / kChunk;
    for (std::size_t c = me; c < chunks; c += stride) {
      const std::size_t off = c * kChunk;
      const std::size_t left = r.bytes[i] - off;
      const unsigned len = unsigned(left < kChunk ? left : kChunk);
      asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(r.p[i] + off), "r"(len) : "memory");
    }
  }
#endif
}

}  // namespace

void l2_prefetch(const L2Range* ranges, int n, cudaStream_t s) {
  Ranges r{};
  std::size_t chunks = 0;
  for (int i = 0; i < n && r.n < kMaxL2Ranges; ++i) {
    const std::size_t bytes = ranges[i].bytes & ~std::size_t(15);
    if (!ranges[i].p || bytes == 0) continue;
    r.p[r.n] = static_cast<const std::uint8_t*>(ranges[i].p);
    r.bytes[r.n++] = bytes;
    chunks += (bytes + kChunk - 1) / kChunk;
  }
  if (chunks == 0) return;
  const int blocks = int(std::min<std::size_t>(kMaxBlocks, (chunks + kThreads - 1) / kThreads));
  l2_prefetch_kernel<<<blocks, kThreads, 0, s>>>(r);
  check_launch("l2_prefetch");
}

}  // namespace troupe::kernels
