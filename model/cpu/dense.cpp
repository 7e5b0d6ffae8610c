#include "model/cpu/dense.hpp"

#include <algorithm>
#include <cmath>

namespace troupe::cpu::dense {

float dot(const float* a, const float* b, std::size_t n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) acc[k] += a[i + k] * b[i + k];
  float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

void linear(ThreadPool& pool, const float* x, std::size_t rows, std::size_t in, const float* w, std::size_t out, float* y,
            const float* bias) {
  pool.parallel_for(out, [&](std::size_t b, std::size_t e) {
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
