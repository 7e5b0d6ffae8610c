#pragma once
// Dense float32 kernels of the Llama cpu reference. Each output element is computed by exactly one task
// in a fixed summation order, so results are bit-identical for any number of threads.
#include <cstddef>

#include "model/cpu/thread_pool.hpp"

namespace troupe::cpu::dense {

// Eight partial sums in a fixed order: vectorizes without -ffast-math and stays deterministic.
float dot(const float* a, const float* b, std::size_t n);
// y[t, o] = sum_i x[t, i] * w[o, i] (+ bias[o]); x: rows x in, w: out x in (PyTorch's F.linear).
void linear(ThreadPool& pool, const float* x, std::size_t rows, std::size_t in, const float* w, std::size_t out,
            float* y, const float* bias = nullptr);
// y = x * rsqrt(mean(x^2) + eps) * weight, one dim-wide row.
void rms_norm(const float* x, const float* weight, std::size_t dim, float eps, float* y);

}  // namespace troupe::cpu::dense
