// kernels/gemm/gemv.hpp against float64 host matmuls: every m in 1..4, FP8 (128x128 block scales, bf16
// activations) and bf16 weights, shapes that take each row count R and k-split count S of the plan (R1's
// q_a|kv_a, q_b and router; V2-Lite's kv_a; the longest rows the plan takes; n not a multiple of 128 or of R),
// bf16 output, float32 and bf16 accumulate. The k-split sums run in a fixed order: a second call gives the same
// bits. Also kernels/moe's gemv_fp8_flat_residual (one token, FP8 weights, added to a float32 residual) on R1's
// o_proj and dense down shapes and two small ones, and the shapes it must refuse; and gemv_fp8_gate_up_silu (the
// dense MLP's gate/up and SiLU at one token) on R1's dense widths and a small shape.
//
// Tolerance: the products are float32 FMAs of exactly representable values (bf16 activations, e4m3 or bf16
// weights); only the float32 summation order and the bf16 output rounding remain.
#include "kernels/gemm/gemv.hpp"
#include "kernels/moe/moe.hpp"
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
    const Fp8BlockWeights w(s.n, s.k, rng);
    for (int m = 1; m <= kernels::gemv::kMaxM; ++m) {
      const auto p = kernels::gemv::plan(m, s.n, s.k, 1, sms);
      check(p.ok, name("fp8 GEMV plan", m, s, p).c_str());
      std::vector<float> xf;
      Dev<std::uint16_t> x(rng.bf16s(std::size_t(m) * s.k, &xf));
      Dev<std::uint16_t> c(std::size_t(m) * s.n);
      kernels::gemv::fp8(x.as<bf16>(), w.codes.as<fp8>(), w.dev_scales.get(), c.as<bf16>(), m, s.n, s.k, p, nullptr);
      const auto first = c.host();
      kernels::gemv::fp8(x.as<bf16>(), w.codes.as<fp8>(), w.dev_scales.get(), c.as<bf16>(), m, s.n, s.k, p, nullptr);
      check(c.host() == first, name("fp8 GEMV is bitwise reproducible", m, s, p).c_str());
      std::vector<float> got, want;
      for (int t = 0; t < m; ++t)
        for (int j = 0; j < s.n; ++j) {
          want.push_back(float(ref_dot(xf, w.values, w.scales, s.k, t, j)));
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
  for (Shape s :
       {Shape{576, 2048}, Shape{3072, 2048}, Shape{256, 7168}, Shape{1000, 8184}, Shape{72, 512}, Shape{37, 64}}) {
    std::vector<float> wf;
    Dev<std::uint16_t> w(rng.bf16s(std::size_t(s.n) * s.k, &wf));
    for (int m = 1; m <= kernels::gemv::kMaxM; ++m) {
      const auto p = kernels::gemv::plan(m, s.n, s.k, 2, sms);
      check(p.ok, name("bf16 GEMV plan", m, s, p).c_str());
      std::vector<float> xf;
      Dev<std::uint16_t> x(rng.bf16s(std::size_t(m) * s.k, &xf));
      const OutModes out(m % 3, std::size_t(m) * s.n, rng);
      kernels::gemv::bf16(x.as<bf16>(), w.as<bf16>(), out.ptr(), out.out_f32(), out.accumulate(), m, s.n, s.k, p,
                          nullptr);
      std::vector<float> want;
      for (int t = 0; t < m; ++t)
        for (int j = 0; j < s.n; ++j)
          want.push_back(float(out.start(std::size_t(t) * s.n + j) + ref_dot(xf, wf, {}, s.k, t, j)));
      check_close(name((std::string("bf16 GEMV") + out.label()).c_str(), m, s, p).c_str(), out.result(), want,
                  1e-5f * s.k, out.out_f32() ? 1e-5f : 1.0f / 128);
    }
  }
}

// Tolerance: x is taken as f16 x 2^-8 and the 16 products of a chunk are summed in f16x2 (the MoE down GEMV's
// dots), so 1% of the output's RMS, where the float32 GEMV above needs 1e-4 sqrt(k).
KERNEL_TEST(gemv_fp8_flat_residual) {
  Rng rng(53);
  for (Shape s : {Shape{7168, 16384}, Shape{7168, 18432}, Shape{200, 4096}, Shape{131, 2048}}) {
    const Fp8BlockWeights w(s.n, s.k, rng);
    std::vector<float> xf;
    Dev<std::uint16_t> x(rng.bf16s(s.k, &xf));
    const std::vector<float> start = rng.floats(s.n, -4.f, 4.f);
    Dev<float> out(start);
    const std::string what = "flat residual GEMV n=" + std::to_string(s.n) + " k=" + std::to_string(s.k);
    const bool ran = kernels::gemv_fp8_flat_residual(x.as<bf16>(), w.codes.as<fp8>(), w.dev_scales.get(), s.n, s.k,
                                                     out.get(), nullptr);
    check(ran, (what + " takes the shape").c_str());
    std::vector<float> want(s.n);
    double ss = 0;
    for (int j = 0; j < s.n; ++j) {
      const double d = ref_dot(xf, w.values, w.scales, s.k, 0, j);
      want[j] = float(start[j] + d), ss += d * d;
    }
    const float rms = float(std::sqrt(ss / s.n));
    check(rms > 1.f, (what + ": the product is not negligible against the start").c_str());
    check_close(what.c_str(), out.host(), want, 1e-2f * rms, 0.f);
  }
  Dev<std::uint16_t> x(std::size_t(2048) * 17);
  Dev<float> out(std::size_t(64));
  for (int k : {3000, 2048 * 17, 1024})
    check(!kernels::gemv_fp8_flat_residual(x.as<bf16>(), nullptr, nullptr, 64, k, out.get(), nullptr),
          ("flat residual GEMV refuses k=" + std::to_string(k)).c_str());
}

// Tolerance: f16x2 dots against x as f16 x 2^-8 (the flat gate/up kernel, moe_gate_up_flat.cuh), then silu(g) u
// rounded to bf16 (1/128 relative).
KERNEL_TEST(gemv_fp8_gate_up_silu) {
  Rng rng(59);
  for (Shape s : {Shape{18432, 7168}, Shape{256, 512}}) {  // n = inter, k = hidden
    const Fp8BlockWeights w(2 * s.n, s.k, rng);              // [gate | up]
    std::vector<float> xf;
    Dev<std::uint16_t> x(rng.bf16s(s.k, &xf));
    Dev<std::uint16_t> h(std::size_t(s.n));
    const std::string what = "dense gate/up GEMV inter=" + std::to_string(s.n) + " hidden=" + std::to_string(s.k);
    check(kernels::gemv_fp8_gate_up_silu(x.as<bf16>(), w.codes.as<fp8>(), w.dev_scales.get(), s.n, s.k, h.as<bf16>(),
                                         nullptr),
          (what + " takes the shape").c_str());
    std::vector<float> want(s.n), got(s.n);
    const auto hh = h.host();
    for (int i = 0; i < s.n; ++i) {
      const double g = ref_dot(xf, w.values, w.scales, s.k, 0, i), u = ref_dot(xf, w.values, w.scales, s.k, 0, s.n + i);
      want[i] = float(g / (1.0 + std::exp(-g)) * u);
      got[i] = bf16_to_float(hh[i]);
    }
    check_close(what.c_str(), got, want, 1e-3f * s.k, 1.0f / 128);
  }
  Dev<std::uint16_t> x(std::size_t(512));
  check(!kernels::gemv_fp8_gate_up_silu(x.as<bf16>(), nullptr, nullptr, 200, 512, nullptr, nullptr),
        "dense gate/up GEMV refuses inter % 128 != 0");
}

}  // namespace
}  // namespace troupe::kernel_test
