#pragma once
// Small dense kernels for the DeepSeek cpu reference. Every output element is computed by exactly one
// task with a fixed summation order, so results do not depend on the number of threads.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "model/cpu/thread_pool.hpp"

namespace troupe::cpu {

float dot(const float* a, const float* b, std::size_t n);
// y[t, o] = sum_i x[t, i] * w[o, i]   (x: rows x in, w: out x in, y: rows x out; PyTorch's F.linear)
void linear(ThreadPool& pool, const float* x, std::size_t rows, std::size_t in, const float* w, std::size_t out,
            float* y);
// In place over each `dim`-wide row at stride `stride`: x * rsqrt(mean(x^2) + eps) * weight.
void rms_norm_rows(float* x, std::size_t rows, std::size_t dim, std::size_t stride, const float* weight, float eps);
inline float silu(float x) { return x / (1.0f + std::exp(-x)); }

}  // namespace troupe::cpu
