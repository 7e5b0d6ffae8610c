#pragma once
// Host-side launch helpers shared by the kernel wrappers: errors as exceptions, the shared-memory opt-in.
#include <cuda_runtime.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <utility>

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

// Whether the environment variable `name` is set to exactly `value` (the kernels' A/B switches; read once each,
// into a function-local static, by the caller).
inline bool env_is(const char* name, const char* value) {
  const char* v = std::getenv(name);
  return v && std::string(v) == value;
}

// The integer in the environment variable `name`, or `fallback` when it is unset or empty (same use as env_is).
inline int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : fallback;
}

// Whether launch_pdl sets the programmatic-serialization attribute: TROUPE_PDL=0 turns it off (A/B, bug hunts).
inline bool pdl_enabled() {
  static const bool on = !env_is("TROUPE_PDL", "0");
  return on;
}

// kernel<<<grid, block, smem, s>>>(args...) as a programmatic dependent launch (pdl.cuh has the kernel's side of
// the contract). Captured into CUDA graphs as a programmatic edge.
template <typename... KernelArgs, typename... Args>
void launch_pdl(void (*kernel)(KernelArgs...), dim3 grid, dim3 block, std::size_t smem, cudaStream_t s,
                const char* what, Args&&... args) {
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = grid, cfg.blockDim = block, cfg.dynamicSmemBytes = smem, cfg.stream = s;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  // The legacy default stream (the kernel tests' nullptr) gets a plain launch: PDL is a property of real streams.
  const bool legacy = s == nullptr || s == cudaStreamLegacy || s == cudaStreamPerThread;
  cfg.attrs = attr, cfg.numAttrs = pdl_enabled() && !legacy ? 1 : 0;
  check_cuda(cudaLaunchKernelEx(&cfg, kernel, std::forward<Args>(args)...), what);
}

}  // namespace troupe::kernels
