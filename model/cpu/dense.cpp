#include "model/cpu/dense.hpp"

#include <algorithm>
#include <cmath>

namespace troupe::cpu::dense {

Threads::Threads(unsigned n) {
  if (n == 0) n = std::max(1u, std::thread::hardware_concurrency());
  for (unsigned i = 1; i < n; ++i) workers_.emplace_back([this, i] { loop(i); });
}

Threads::~Threads() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

namespace {
std::pair<std::size_t, std::size_t> part(std::size_t n, unsigned parts, unsigned i) {
  std::size_t per = n / parts, extra = n % parts;
  std::size_t b = i * per + std::min<std::size_t>(i, extra);
  return {b, b + per + (i < extra ? 1 : 0)};
}
}  // namespace

void Threads::loop(unsigned index) {
  std::uint64_t seen = 0;
  for (;;) {
    std::unique_lock lk(mu_);
    wake_.wait(lk, [&] { return stop_ || generation_ != seen; });
    if (stop_) return;
    seen = generation_;
    const Fn* fn = fn_;
    auto [b, e] = part(n_, size(), index);
    lk.unlock();
    if (b < e) (*fn)(b, e);
    lk.lock();
    if (--pending_ == 0) done_.notify_one();
  }
}

void Threads::run(std::size_t n, const Fn& fn) {
  if (n == 0) return;
  if (workers_.empty() || n == 1) return fn(0, n);
  {
    std::lock_guard lk(mu_);
    fn_ = &fn;
    n_ = n;
    pending_ = unsigned(workers_.size());
    ++generation_;
  }
  wake_.notify_all();
  auto [b, e] = part(n, size(), 0);
  if (b < e) fn(b, e);
  std::unique_lock lk(mu_);
  done_.wait(lk, [&] { return pending_ == 0; });
}

float dot(const float* a, const float* b, std::size_t n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) acc[k] += a[i + k] * b[i + k];
  float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

void linear(Threads& th, const float* x, std::size_t rows, std::size_t in, const float* w, std::size_t out, float* y,
            const float* bias) {
  th.run(out, [&](std::size_t b, std::size_t e) {
    for (std::size_t o = b; o < e; ++o)
      for (std::size_t t = 0; t < rows; ++t) y[t * out + o] = dot(x + t * in, w + o * in, in) + (bias ? bias[o] : 0.0f);
  });
}

void rms_norm(const float* x, const float* weight, std::size_t dim, float eps, float* y) {
  float ss = 0;
  for (std::size_t i = 0; i < dim; ++i) ss += x[i] * x[i];
  float r = 1.0f / std::sqrt(ss / float(dim) + eps);
  for (std::size_t i = 0; i < dim; ++i) y[i] = x[i] * r * weight[i];
}

}  // namespace troupe::cpu::dense
