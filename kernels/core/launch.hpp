#pragma once
// Host-side launch helpers shared by the kernel wrappers: errors as exceptions, the shared-memory opt-in.
#include <cuda_runtime.h>

#include <atomic>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace troupe::kernels {

inline void check_cuda(cudaError_t e, const std::string& what) {
  if (e != cudaSuccess) throw std::runtime_error(what + ": " + cudaGetErrorString(e));
}

// After a launch: a bad configuration (grid, shared memory) surfaces here, not at the next synchronisation.
inline void check_launch(const char* what) { check_cuda(cudaGetLastError(), what); }

// The dynamic shared-memory opt-in (needed above 48 KiB), once per device and kernel: the attribute call costs
// tens of microseconds, too much per launch. `done` is the caller's flag set for this kernel (one bit per device),
// `bytes` the most the kernel is ever launched with.
template <typename Kernel>
void opt_in_smem(Kernel kernel, int bytes, std::atomic<std::uint64_t>& done) {
  int dev = 0;
  cudaGetDevice(&dev);
  const std::uint64_t bit = std::uint64_t(1) << (dev & 63);
  if (!(done.load(std::memory_order_relaxed) & bit)) {
    cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
    done.fetch_or(bit);
  }
}

}  // namespace troupe::kernels
