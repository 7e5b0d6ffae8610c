#pragma once
// Dense float32 kernels of the Llama cpu reference. Each output element is computed by exactly one task
// in a fixed summation order, so results are bit-identical for any number of threads.
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace troupe::cpu::dense {

// A fixed set of threads; run() splits [0, n) into contiguous ranges and blocks until all are done.
class Threads {
 public:
  using Fn = std::function<void(std::size_t begin, std::size_t end)>;
  explicit Threads(unsigned n = 0);  // 0: one per hardware thread
  ~Threads();
  Threads(const Threads&) = delete;
  Threads& operator=(const Threads&) = delete;
  unsigned size() const { return unsigned(workers_.size()) + 1; }
  void run(std::size_t n, const Fn& fn);

 private:
  void loop(unsigned index);
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable wake_, done_;
  const Fn* fn_ = nullptr;
  std::size_t n_ = 0;
  unsigned pending_ = 0;
  std::uint64_t generation_ = 0;
  bool stop_ = false;
};

// Eight partial sums in a fixed order: vectorizes without -ffast-math and stays deterministic.
float dot(const float* a, const float* b, std::size_t n);
// y[t, o] = sum_i x[t, i] * w[o, i] (+ bias[o]); x: rows x in, w: out x in (PyTorch's F.linear).
void linear(Threads& th, const float* x, std::size_t rows, std::size_t in, const float* w, std::size_t out, float* y,
            const float* bias = nullptr);
// y = x * rsqrt(mean(x^2) + eps) * weight, one dim-wide row.
void rms_norm(const float* x, const float* weight, std::size_t dim, float eps, float* y);

}  // namespace troupe::cpu::dense
