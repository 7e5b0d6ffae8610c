// The kernel test program: every kernel against its cpu reference over a sweep of shapes. Run on the GPU
// machine (tools/device/ has the workflow); CI compiles it but has no GPU to run it on.
#include "tests/kernels/kernel_test.hpp"

#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <exception>

namespace troupe::kernel_test {

std::vector<Case>& registry() {
  static std::vector<Case> r;
  return r;
}
int& failures() {
  static int f = 0;
  return f;
}

bool check(bool ok, const char* what) {
  if (!ok) {
    std::printf("  FAIL %s\n", what);
    ++failures();
  }
  return ok;
}

bool check_close(const char* what, const std::vector<float>& got, const std::vector<float>& want, float atol,
                 float rtol) {
  if (got.size() != want.size()) {
    std::printf("  FAIL %s: %zu values, want %zu\n", what, got.size(), want.size());
    ++failures();
    return false;
  }
  std::size_t worst = 0, bad = 0;
  double worst_excess = -1;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double tol = atol + rtol * std::fabs(want[i]);
    const double err = std::fabs(double(got[i]) - double(want[i]));
    const double excess = std::isfinite(got[i]) ? err - tol : 1e30;
    if (excess > 0) ++bad;
    if (excess > worst_excess) worst_excess = excess, worst = i;
  }
  if (bad == 0) return true;
  std::printf("  FAIL %s: %zu of %zu beyond atol %g rtol %g; worst [%zu] got %g want %g\n", what, bad, got.size(),
              atol, rtol, worst, got[worst], want[worst]);
  ++failures();
  return false;
}

}  // namespace troupe::kernel_test

int main(int argc, char** argv) {
  using namespace troupe::kernel_test;
  int dev_count = 0;
  if (cudaGetDeviceCount(&dev_count) != cudaSuccess || dev_count == 0) {
    std::printf("no CUDA device: the kernel tests run on the GPU machine\n");
    return 2;
  }
  const std::string filter = argc > 1 ? argv[1] : "";
  int run = 0;
  for (const Case& c : registry()) {
    if (!filter.empty() && c.name.find(filter) == std::string::npos) continue;
    const int before = failures();
    const auto t0 = std::chrono::steady_clock::now();
    try {
      c.fn();
    } catch (const std::exception& ex) {  // a refused shape or a CUDA error: a failed case, not an abort
      std::printf("  FAIL %s threw: %s\n", c.name.c_str(), ex.what());
      ++failures();
    }
    const cudaError_t e = cudaDeviceSynchronize();
    if (e != cudaSuccess) check(false, cudaGetErrorString(e));
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    std::printf("%s %s (%.0f ms)\n", failures() == before ? "ok  " : "FAIL", c.name.c_str(), ms);
    ++run;
  }
  std::printf("%d cases, %d failed checks\n", run, failures());
  return failures() == 0 ? 0 : 1;
}
