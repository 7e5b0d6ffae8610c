#pragma once
// Staging for the FP8 block-scaled GEMM: cuBLASLt's VEC128 activation scales are token-major
// ([k/128, m_pad], m_pad a multiple of 4, at least 16), our quant_fp8_group128 writes them row-major
// ([m, k/128]); the weight scales' k-block dimension must be a multiple of 4. The buffers grow on demand
// (cudaMalloc), or are reserved once for the largest shape: a CUDA graph bakes their addresses in, so a
// caller that captures graphs reserves first and no later call may grow (and free) them.
#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <cstddef>

namespace troupe::kernels {

struct Fp8Prepared {
  int m_pad = 0;
  const __nv_fp8_e4m3* a = nullptr;  // the caller's a when m_pad == m, else a padded copy
  const float* a_scale = nullptr;    // token-major, m_pad columns
  const float* w_scale = nullptr;    // the caller's w_scale when k/128 % 4 == 0, else a padded copy
  __nv_bfloat16* c = nullptr;        // [m_pad, n] scratch output when m_pad != m
};

class Fp8Staging {
 public:
  Fp8Prepared prepare(const __nv_fp8_e4m3* a, const float* a_scale, const float* w_scale, int m, int n, int k,
                      cudaStream_t s);
  // Sizes every buffer for any call with m <= max_m, n <= max_n, k <= max_k (k a multiple of 128).
  void reserve(int max_m, int max_n, int max_k);
  void release();
  ~Fp8Staging() { release(); }

 private:
  void* grow(void*& buf, std::size_t& cap, std::size_t need);
  void *a_ = nullptr, *as_ = nullptr, *ws_ = nullptr, *c_ = nullptr;
  std::size_t a_cap_ = 0, as_cap_ = 0, ws_cap_ = 0, c_cap_ = 0;
};

}  // namespace troupe::kernels
