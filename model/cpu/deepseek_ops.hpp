#pragma once
// Small dense kernels for the DeepSeek cpu reference. Every output element is computed by exactly one
// task with a fixed summation order, so results do not depend on the number of threads.
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace troupe::cpu {

// A fixed set of workers; parallel_for blocks until the whole range is done. Not reentrant.
class ThreadPool {
 public:
  using Fn = std::function<void(std::size_t begin, std::size_t end)>;
  explicit ThreadPool(unsigned threads = 0);  // 0: one per hardware thread
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;
  unsigned size() const { return static_cast<unsigned>(workers_.size()) + 1; }
  void parallel_for(std::size_t n, const Fn& fn);

 private:
  void worker_loop();
  void run_chunks();
  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  const Fn* fn_ = nullptr;
  std::size_t n_ = 0, chunks_ = 0, pending_ = 0;
  std::atomic<std::size_t> next_{0};
  std::uint64_t generation_ = 0;
  bool stop_ = false;
};

float dot(const float* a, const float* b, std::size_t n);
// y[t, o] = sum_i x[t, i] * w[o, i]   (x: rows x in, w: out x in, y: rows x out; PyTorch's F.linear)
void linear(ThreadPool& pool, const float* x, std::size_t rows, std::size_t in, const float* w, std::size_t out,
            float* y);
// In place over each `dim`-wide row at stride `stride`: x * rsqrt(mean(x^2) + eps) * weight.
void rms_norm_rows(float* x, std::size_t rows, std::size_t dim, std::size_t stride, const float* weight, float eps);
inline float silu(float x) { return x / (1.0f + std::exp(-x)); }

}  // namespace troupe::cpu
