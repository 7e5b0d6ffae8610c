// Small copies that put FP8 GEMM operands into the layouts cuBLASLt's block-scaled kernels read.
#include "kernels/gemm/fp8_prep.hpp"

#include <stdexcept>
#include <string>

namespace troupe::kernels {
namespace {

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string("fp8 staging ") + what + ": " + cudaGetErrorString(e));
}

// out[kb * m_pad + row] = in[row * kbs + kb] for row < m, 1 for the padding rows (their outputs are dropped).
// (Checked against a host reference by tests/kernels/gemm_test.cpp: cuBLASLt 13.1 reads VEC128 scales
// token-major, as PyTorch's "outer-dim-major" 1x128 scales.)
__global__ void scale_transpose_kernel(const float* in, int m, int m_pad, int kbs, float* out) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= m_pad * kbs) return;
  const int row = i % m_pad, kb = i / m_pad;
  out[std::size_t(kb) * m_pad + row] = row < m ? in[std::size_t(row) * kbs + kb] : 1.0f;
}

}  // namespace

void* Fp8Staging::grow(void*& buf, std::size_t& cap, std::size_t need) {
  if (need <= cap) return buf;
  if (buf) check(cudaFree(buf), "free");
  buf = nullptr;
  cap = 0;
  check(cudaMalloc(&buf, need), "alloc");
  check(cudaMemset(buf, 0, need), "clear");
  cap = need;
  return buf;
}

void Fp8Staging::reserve(int max_m, int max_n, int max_k) {
  if (max_m <= 0 || max_n <= 0 || max_k <= 0) return;
  const std::size_t m_pad = max_m < 16 ? 16 : std::size_t(max_m + 3) / 4 * 4, kbs = std::size_t(max_k) / 128;
  const std::size_t nbs = (std::size_t(max_n) + 127) / 128, kbs_pad = (kbs + 3) / 4 * 4;
  grow(a_, a_cap_, m_pad * std::size_t(max_k));
  grow(c_, c_cap_, m_pad * std::size_t(max_n) * sizeof(__nv_bfloat16));
  grow(as_, as_cap_, m_pad * kbs * sizeof(float));
  grow(ws_, ws_cap_, nbs * kbs_pad * sizeof(float));
}

void Fp8Staging::release() {
  for (void** p : {&a_, &as_, &ws_, &c_})
    if (*p) cudaFree(*p), *p = nullptr;
  a_cap_ = as_cap_ = ws_cap_ = c_cap_ = 0;
}

Fp8Prepared Fp8Staging::prepare(const __nv_fp8_e4m3* a, const float* a_scale, const float* w_scale, int m, int n,
                                int k, cudaStream_t s) {
  Fp8Prepared p;
  const int kbs = k / 128, nbs = (n + 127) / 128;
  p.m_pad = m < 16 ? 16 : (m + 3) / 4 * 4;
  p.a = a;
  if (p.m_pad != m) {
    auto* buf = static_cast<__nv_fp8_e4m3*>(grow(a_, a_cap_, std::size_t(p.m_pad) * k));
    check(cudaMemcpyAsync(buf, a, std::size_t(m) * k, cudaMemcpyDeviceToDevice, s), "copy a");
    p.a = buf;
    p.c = static_cast<__nv_bfloat16*>(grow(c_, c_cap_, std::size_t(p.m_pad) * n * sizeof(__nv_bfloat16)));
  }
  auto* st = static_cast<float*>(grow(as_, as_cap_, std::size_t(p.m_pad) * kbs * sizeof(float)));
  const int total = p.m_pad * kbs;
  scale_transpose_kernel<<<(total + 255) / 256, 256, 0, s>>>(a_scale, m, p.m_pad, kbs, st);
  check(cudaGetLastError(), "scale transpose");
  p.a_scale = st;
  p.w_scale = w_scale;
  const int kbs_pad = (kbs + 3) / 4 * 4;
  if (kbs_pad != kbs) {
    auto* wp = static_cast<float*>(grow(ws_, ws_cap_, std::size_t(nbs) * kbs_pad * sizeof(float)));
    check(cudaMemcpy2DAsync(wp, kbs_pad * sizeof(float), w_scale, kbs * sizeof(float), kbs * sizeof(float), nbs,
                            cudaMemcpyDeviceToDevice, s),
          "pad w_scale");
    p.w_scale = wp;
  }
  return p;
}

}  // namespace troupe::kernels
