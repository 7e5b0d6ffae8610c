// kernels/gemm/gemv.hpp against float64 host matmuls: every m in 1..4, FP8 (128x128 block scales, bf16
// activations) and bf16 weights, shapes that take each row count R and k-split count S of the plan (R1's
// q_a|kv_a, q_b and router; V2-Lite's kv_a; the longest rows the plan takes; n not a multiple of 128 or of R), bf16 output, float32 and bf16
// accumulate. The k-split sums run in a fixed order: a second call gives the same bits.
//
// Tolerance: the products are float32 FMAs of exactly representable values (bf16 activations, e4m3 or bf16
// weights); only the float32 summation order and the bf16 output rounding remain.
#include "kernels/gemm/gemv.hpp"
#include "tests/kernels/device_util.hpp"
#include "tests/kernels/kernel_test.hpp"

#include <cmath>
#include <string>

namespace troupe::kernel_test {
namespace {

using bf16 = __nv_bfloat16;
using fp8 = __nv_fp8_e4m3;

struct Shape {
  int n, k;
};

std::string name(const char* what, int m, Shape s, const kernels::gemv::Plan& p) {
  return std::string(what) + " m=" + std::to_string(m) + " n=" + std::to_string(s.n) + " k=" + std::to_string(s.k) +
         " (R=" + std::to_string(p.rows) + " S=" + std::to_string(p.splits) + ")";
}

int sm_count() {
  int dev = 0, sms = 0;
  cuda_ok(cudaGetDevice(&dev), "device");
  cuda_ok(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev), "SMs");
  return sms;
}

std::vector<std::uint8_t> fp8_codes(std::size_t n, Rng& rng) {  // |value| in [2^-4, 2^4), random sign
  std::vector<std::uint8_t> v(n);
  for (auto& b : v) b = std::uint8_t((rng.integer(0, 1) << 7) | (rng.integer(3, 10) << 3) | rng.integer(0, 7));
  return v;
}

// x . w_j over k, w_j scaled per 128-wide block (FP8) or not (w_scale empty).
double ref_dot(const std::vector<float>& xf, const std::vector<float>& wf, const std::vector<float>& w_scale, int k,
               int t, int j) {
  double acc = 0;
  const int kb = k / 128;
  for (int e = 0; e < k; ++e) {
    const double sc = w_scale.empty() ? 1.0 : w_scale[std::size_t(j / 128) * kb + e / 128];
    acc += double(xf[std::size_t(t) * k + e]) * wf[std::size_t(j) * k + e] * sc;
  }
  return acc;
}

KERNEL_TEST(gemv_fp8) {
  Rng rng(43);
  const int sms = sm_count();
  for (Shape s : {Shape{2112, 7168}, Shape{24576, 1536}, Shape{4096, 16256}, Shape{200, 1536}, Shape{131, 512}}) {
    const int kb = s.k / 128, nb = (s.n + 127) / 128;
    const auto wq = fp8_codes(std::size_t(s.n) * s.k, rng);
    const auto ws = rng.floats(std::size_t(nb) * kb, 0.5f / 64, 2.0f / 64);
    const auto wf = decode_fp8(wq);
    Dev<std::uint8_t> w(wq);
    Dev<float> dws(ws);
    for (int m = 1; m <= kernels::gemv::kMaxM; ++m) {
      const auto p = kernels::gemv::plan(m, s.n, s.k, 1, sms);
      check(p.ok, name("fp8 GEMV plan", m, s, p).c_str());
      std::vector<float> xf;
      Dev<std::uint16_t> x(rng.bf16s(std::size_t(m) * s.k, &xf));
      Dev<std::uint16_t> c(std::size_t(m) * s.n);
      kernels::gemv::fp8(x.as<bf16>(), w.as<fp8>(), dws.get(), c.as<bf16>(), m, s.n, s.k, p, nullptr);
      const auto first = c.host();
      kernels::gemv::fp8(x.as<bf16>(), w.as<fp8>(), dws.get(), c.as<bf16>(), m, s.n, s.k, p, nullptr);
      check(c.host() == first, name("fp8 GEMV is bitwise reproducible", m, s, p).c_str());
      std::vector<float> got, want;
      for (int t = 0; t < m; ++t)
        for (int j = 0; j < s.n; ++j) {
          want.push_back(float(ref_dot(xf, wf, ws, s.k, t, j)));
          got.push_back(bf16_to_float(first[std::size_t(t) * s.n + j]));
        }
      check_close(name("fp8 GEMV", m, s, p).c_str(), got, want, 1e-4f * std::sqrt(float(s.k)), 1.0f / 128);
    }
  }
}

// bf16 weights; m cycles through bf16 output, float32 accumulate (the residual add) and bf16 accumulate.
KERNEL_TEST(gemv_bf16) {
  Rng rng(47);
  const int sms = sm_count();
  for (Shape s : {Shape{576, 2048}, Shape{3072, 2048}, Shape{256, 7168}, Shape{1000, 8184}, Shape{72, 512}, Shape{37, 64}}) {
    std::vector<float> wf;
    Dev<std::uint16_t> w(rng.bf16s(std::size_t(s.n) * s.k, &wf));
    for (int m = 1; m <= kernels::gemv::kMaxM; ++m) {
      const auto p = kernels::gemv::plan(m, s.n, s.k, 2, sms);
      check(p.ok, name("bf16 GEMV plan", m, s, p).c_str());
      std::vector<float> xf;
      Dev<std::uint16_t> x(rng.bf16s(std::size_t(m) * s.k, &xf));
      const int mode = m % 3;  // 0: bf16, 1: f32 accumulate, 2: bf16 accumulate
      std::vector<float> c0 = rng.floats(std::size_t(m) * s.n);
      std::vector<std::uint16_t> c0b(c0.size());
      for (std::size_t i = 0; i < c0.size(); ++i) c0[i] = bf16_to_float(c0b[i] = float_to_bf16(c0[i]));
      Dev<float> cf(c0);
      Dev<std::uint16_t> cb(c0b);
      kernels::gemv::bf16(x.as<bf16>(), w.as<bf16>(), mode == 1 ? static_cast<void*>(cf.get()) : cb.get(), mode == 1,
                          mode != 0, m, s.n, s.k, p, nullptr);
      const auto cfh = cf.host();
      const auto cbh = cb.host();
      std::vector<float> got, want;
      for (int t = 0; t < m; ++t)
        for (int j = 0; j < s.n; ++j) {
          const std::size_t i = std::size_t(t) * s.n + j;
          want.push_back(float((mode ? c0[i] : 0.0) + ref_dot(xf, wf, {}, s.k, t, j)));
          got.push_back(mode == 1 ? cfh[i] : bf16_to_float(cbh[i]));
        }
      const char* what = mode == 0 ? "bf16 GEMV" : mode == 1 ? "bf16 GEMV (f32 accumulate)" : "bf16 GEMV (bf16 accumulate)";
      check_close(name(what, m, s, p).c_str(), got, want, 1e-5f * s.k, mode == 1 ? 1e-5f : 1.0f / 128);
    }
  }
}

}  // namespace
}  // namespace troupe::kernel_test
