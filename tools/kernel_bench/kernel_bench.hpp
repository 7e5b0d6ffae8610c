#pragma once
// The kernel benchmark program's registry and timer. Each *_bench.cpp registers cases with KERNEL_BENCH;
// a case calls Bench::time() per kernel and shape with the bytes it must move and the FLOPs it must do,
// and the program prints one table: median time, achieved GB/s and TFLOP/s, and the share of the roofline
// (max(bytes / HBM bandwidth, FLOPs / tensor peak) over the measured time).
//
// Timing: CUDA events around each launch, after a warm-up; the median of `iters` launches. The L2 cache
// (50 MB on H100/H200) is flushed before every timed launch, so memory-bound kernels are measured from HBM
// as they run inside a model step, not from a warm L2.
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace troupe::kernel_bench {

enum class Peak { memory, bf16, fp8 };  // which compute peak bounds the kernel (memory: bandwidth only)

struct Device {
  std::string name;
  double hbm_bytes_per_s = 3.35e12, bf16_flops = 989e12, fp8_flops = 1979e12;
  bool known = true;
};
Device detect_device();

struct Row {
  std::string kernel, shape;
  double us = 0, bytes = 0, flops = 0, roofline_share = 0;
  Peak peak = Peak::memory;
};

class Bench {
 public:
  Bench(Device d, int warmup, int iters);
  ~Bench();
  // Times launch(stream); `bytes` / `flops` are what the kernel must do at minimum (unique bytes moved).
  void time(const std::string& kernel, const std::string& shape, double bytes, double flops, Peak peak,
            const std::function<void(cudaStream_t)>& launch);
  const std::vector<Row>& rows() const { return rows_; }
  const Device& device() const { return dev_; }
  cudaStream_t stream() const { return stream_; }

 private:
  Device dev_;
  int warmup_, iters_;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t start_ = nullptr, stop_ = nullptr;
  void* flush_ = nullptr;
  std::size_t flush_bytes_ = 0;
  std::vector<Row> rows_;
};

struct Case {
  std::string name;
  std::function<void(Bench&)> fn;
};
std::vector<Case>& registry();
struct Register {
  Register(const char* name, std::function<void(Bench&)> fn) { registry().push_back({name, std::move(fn)}); }
};

// Device buffers filled on the GPU with reproducible pseudo-random values (tools/kernel_bench/fill.cu).
void fill_bf16(void* p, std::size_t n, float lo, float hi, std::uint64_t seed);
void fill_fp8(void* p, std::size_t n, std::uint64_t seed);  // |value| in [2^-4, 2^4), random sign
void fill_f32(float* p, std::size_t n, float lo, float hi, std::uint64_t seed);
void fill_i32(std::int32_t* p, std::size_t n, int lo, int hi, std::uint64_t seed);

// An owned device allocation (bytes), freed at scope exit.
class Buffer {
 public:
  explicit Buffer(std::size_t bytes);
  ~Buffer();
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  template <class T>
  T* as() const {
    return static_cast<T*>(p_);
  }

 private:
  void* p_ = nullptr;
};

}  // namespace troupe::kernel_bench

#define KB_CAT2(a, b) a##b
#define KB_CAT(a, b) KB_CAT2(a, b)
#define KERNEL_BENCH(name)                                                                          \
  static void name(::troupe::kernel_bench::Bench&);                                                 \
  static ::troupe::kernel_bench::Register KB_CAT(kb_reg_, name)(#name, name);                      \
  static void name(::troupe::kernel_bench::Bench& bench)
