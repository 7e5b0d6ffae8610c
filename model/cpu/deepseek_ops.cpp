#include "model/cpu/deepseek_ops.hpp"

#include <algorithm>
#include <cmath>

namespace troupe::cpu {

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
