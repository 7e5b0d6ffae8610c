#include "model/cpu/deepseek_ops.hpp"

#include <algorithm>
#include <cmath>

namespace troupe::cpu {

ThreadPool::ThreadPool(unsigned threads) {
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  for (unsigned i = 1; i < threads; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  for (auto& w : workers_) w.join();
}

void ThreadPool::parallel_for(std::size_t n, const Fn& fn) {
  if (n == 0) return;
  if (workers_.empty() || n == 1) {
    fn(0, n);
    return;
  }
  {
    std::lock_guard lock(mutex_);
    fn_ = &fn;
    n_ = n;
    // Chunks are contiguous index ranges; which thread takes a chunk never changes what it computes.
    chunks_ = std::min<std::size_t>(n, 4 * size());
    next_ = 0;
    pending_ = workers_.size();
    ++generation_;
  }
  wake_.notify_all();
  run_chunks();
  std::unique_lock lock(mutex_);
  done_.wait(lock, [this] { return pending_ == 0; });
  fn_ = nullptr;
}

void ThreadPool::worker_loop() {
  std::uint64_t seen = 0;
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
    }
    run_chunks();
    std::lock_guard lock(mutex_);
    if (--pending_ == 0) done_.notify_one();
  }
}

void ThreadPool::run_chunks() {
  for (;;) {
    std::size_t c = next_.fetch_add(1);
    if (c >= chunks_) return;
    (*fn_)(n_ * c / chunks_, n_ * (c + 1) / chunks_);
  }
}

float dot(const float* a, const float* b, std::size_t n) {
  // Eight independent partial sums: vectorizes without -ffast-math and keeps a fixed order.
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) acc[k] += a[i + k] * b[i + k];
  float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

void linear(ThreadPool& pool, const float* x, std::size_t rows, std::size_t in, const float* w, std::size_t out,
            float* y) {
  // Split over output features: a decode step (rows == 1) still uses every thread, and each weight row
  // is read once for all rows of x.
  pool.parallel_for(out, [&](std::size_t o0, std::size_t o1) {
    for (std::size_t o = o0; o < o1; ++o)
      for (std::size_t t = 0; t < rows; ++t) y[t * out + o] = dot(x + t * in, w + o * in, in);
  });
}

void rms_norm_rows(float* x, std::size_t rows, std::size_t dim, std::size_t stride, const float* weight,
                   float eps) {
  for (std::size_t t = 0; t < rows; ++t) {
    float* r = x + t * stride;
    double ss = 0;
    for (std::size_t i = 0; i < dim; ++i) ss += double(r[i]) * r[i];
    const float inv = 1.0f / std::sqrt(float(ss / double(dim)) + eps);
    for (std::size_t i = 0; i < dim; ++i) r[i] = weight[i] * (r[i] * inv);
  }
}

}  // namespace troupe::cpu
