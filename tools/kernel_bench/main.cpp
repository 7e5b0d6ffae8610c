// troupe_kernel_bench [filter]: runs every registered case (or those whose name contains the filter) and
// prints one table of kernel, shape, median time, GB/s, TFLOP/s and the share of the roofline.
#include "tools/kernel_bench/kernel_bench.hpp"

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

int main(int argc, char** argv) {
  using namespace troupe::kernel_bench;
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    std::printf("no CUDA device: the kernel benchmark runs on the GPU machine\n");
    return 2;
  }
  const std::string filter = argc > 1 ? argv[1] : "";
  const Device dev = detect_device();
  std::printf("device: %s  (roofline: %.2f TB/s HBM, %.0f TFLOP/s bf16, %.0f TFLOP/s fp8%s)\n", dev.name.c_str(),
              dev.hbm_bytes_per_s / 1e12, dev.bf16_flops / 1e12, dev.fp8_flops / 1e12,
              dev.known ? "" : "; unknown GPU, H100 SXM figures");
  Bench bench(dev, 3, 20);
  int failed = 0;
  for (const Case& c : registry()) {
    if (!filter.empty() && c.name.find(filter) == std::string::npos) continue;
    try {
      c.fn(bench);
    } catch (const std::exception& e) {
      std::printf("case %s failed: %s\n", c.name.c_str(), e.what());
      ++failed;
    }
  }
  std::printf("\n| kernel | shape | median us | GB/s | TFLOP/s | bound | roofline |\n|---|---|---:|---:|---:|---|---:|\n");
  for (const Row& r : bench.rows()) {
    const char* bound = r.peak == Peak::memory ? "HBM" : r.peak == Peak::fp8 ? "HBM/fp8" : "HBM/bf16";
    std::printf("| %s | %s | %.1f | %.0f | %.1f | %s | %.0f%% |\n", r.kernel.c_str(), r.shape.c_str(), r.us,
                r.bytes / (r.us * 1e-6) / 1e9, r.flops / (r.us * 1e-6) / 1e12, bound, r.roofline_share * 100);
  }
  return failed ? 1 : 0;
}
