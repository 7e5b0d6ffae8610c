// Bench: CUDA-event timing with an L2 flush before each timed launch, and the roofline arithmetic.
#include "tools/kernel_bench/kernel_bench.hpp"

#include <algorithm>
#include <stdexcept>

namespace troupe::kernel_bench {
namespace {
void ok(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(e));
}
}  // namespace

std::vector<Case>& registry() {
  static std::vector<Case> r;
  return r;
}

// H100 SXM: 3.35 TB/s, 989 TFLOP/s dense bf16, 1979 fp8; H200: 4.8 TB/s, same tensor peaks.
Device detect_device() {
  cudaDeviceProp p{};
  ok(cudaGetDeviceProperties(&p, 0), "cudaGetDeviceProperties");
  Device d;
  d.name = p.name;
  if (d.name.find("H200") != std::string::npos) {
    d.hbm_bytes_per_s = 4.8e12;
  } else if (d.name.find("H100") == std::string::npos) {
    d.known = false;  // not a Hopper we have numbers for: H100 SXM figures are used
  }
  return d;
}

Buffer::Buffer(std::size_t bytes) { ok(cudaMalloc(&p_, bytes ? bytes : 1), "cudaMalloc"); }
Buffer::~Buffer() { cudaFree(p_); }

Bench::Bench(Device d, int warmup, int iters) : dev_(std::move(d)), warmup_(warmup), iters_(iters) {
  ok(cudaStreamCreate(&stream_), "stream");
  ok(cudaEventCreate(&start_), "event");
  ok(cudaEventCreate(&stop_), "event");
  int l2 = 0;
  cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, 0);
  flush_bytes_ = std::size_t(std::max(l2, 1 << 20)) * 2;
  ok(cudaMalloc(&flush_, flush_bytes_), "flush buffer");
}

Bench::~Bench() {
  cudaFree(flush_);
  cudaEventDestroy(start_);
  cudaEventDestroy(stop_);
  cudaStreamDestroy(stream_);
}

void Bench::time(const std::string& kernel, const std::string& shape, double bytes, double flops, Peak peak,
                 const std::function<void(cudaStream_t)>& launch) {
  for (int i = 0; i < warmup_; ++i) launch(stream_);
  ok(cudaStreamSynchronize(stream_), (kernel + " warm-up").c_str());
  std::vector<float> ms(iters_);
  for (int i = 0; i < iters_; ++i) {
    ok(cudaMemsetAsync(flush_, i & 0xff, flush_bytes_, stream_), "L2 flush");
    ok(cudaEventRecord(start_, stream_), "record");
    launch(stream_);
    ok(cudaEventRecord(stop_, stream_), "record");
    ok(cudaEventSynchronize(stop_), (kernel + " run").c_str());
    ok(cudaEventElapsedTime(&ms[i], start_, stop_), "elapsed");
  }
  std::sort(ms.begin(), ms.end());
  Row r;
  r.kernel = kernel, r.shape = shape, r.bytes = bytes, r.flops = flops, r.peak = peak;
  r.us = ms[ms.size() / 2] * 1e3;
  const double compute_peak = peak == Peak::fp8 ? dev_.fp8_flops : dev_.bf16_flops;
  const double ideal_s = std::max(bytes / dev_.hbm_bytes_per_s, peak == Peak::memory ? 0.0 : flops / compute_peak);
  r.roofline_share = ideal_s / (r.us * 1e-6);
  rows_.push_back(r);
}

}  // namespace troupe::kernel_bench
