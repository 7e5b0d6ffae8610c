// kernels/core element-wise and row-wise kernels against float host references (the cpu oracle's formulas:
// model/cpu/dense.cpp rms_norm, model/cpu/rope_yarn.cpp Rope::apply, silu * up, DeepSeek's 1x128 FP8
// activation quantization).
//
// Tolerances: inputs are bf16, the device computes in float32 and rounds the output to bf16 once, so an
// output may differ from the float reference by half a bf16 ulp (relative 2^-9) plus float32 summation-order
// noise; we allow rtol 2^-8 and a small atol for values near zero. Float outputs that involve no rounding
// (embedding, the residual add) must match exactly.
#include "kernels/core/ops.hpp"
#include "tests/kernels/device_util.hpp"
#include "tests/kernels/kernel_test.hpp"

#include <cmath>
#include <string>

namespace troupe::kernel_test {
namespace {

using kernels::bf16;
constexpr float kBf16Rtol = 1.0f / 256;

std::string label(const char* what, int n, int d) {
  return std::string(what) + " n=" + std::to_string(n) + " d=" + std::to_string(d);
}

KERNEL_TEST(core_embedding) {
  Rng rng(1);
  for (int hidden : {64, 128, 7168, 20}) {
    for (int n : {1, 7, 300}) {
      const int vocab = 97;
      std::vector<float> tf;
      Dev<std::uint16_t> table(rng.bf16s(std::size_t(vocab) * hidden, &tf));
      std::vector<std::int32_t> ids(n);
      for (auto& i : ids) i = rng.integer(0, vocab - 1);
      Dev<std::int32_t> dids(ids);
      Dev<float> out(std::size_t(n) * hidden);
      kernels::embedding(table.as<bf16>(), dids.get(), n, hidden, out.get(), nullptr);
      std::vector<float> want(out.size());
      for (int t = 0; t < n; ++t)
        for (int i = 0; i < hidden; ++i) want[std::size_t(t) * hidden + i] = tf[std::size_t(ids[t]) * hidden + i];
      check_close(label("embedding", n, hidden).c_str(), out.host(), want, 0, 0);
    }
  }
}

KERNEL_TEST(core_add_rmsnorm) {
  Rng rng(2);
  for (int hidden : {64, 128, 7168, 36}) {
    for (int n : {1, 7, 300}) {
      for (bool with_x : {true, false}) {
        std::vector<float> res = rng.floats(std::size_t(n) * hidden, -2, 2), xf, wf;
        Dev<float> dres(res);
        Dev<std::uint16_t> x(rng.bf16s(res.size(), &xf)), w(rng.bf16s(hidden, &wf, 0.5f, 1.5f));
        Dev<std::uint16_t> out(res.size());
        const float eps = 1e-6f;
        kernels::add_rmsnorm(dres.get(), with_x ? x.as<bf16>() : nullptr, w.as<bf16>(), eps, n, hidden,
                             out.as<bf16>(), nullptr);
        std::vector<float> want(res.size());
        for (int t = 0; t < n; ++t) {
          double ss = 0;
          for (int i = 0; i < hidden; ++i) {
            float& r = res[std::size_t(t) * hidden + i];
            if (with_x) r += xf[std::size_t(t) * hidden + i];
            ss += double(r) * r;
          }
          const float inv = float(1.0 / std::sqrt(ss / hidden + eps));
          for (int i = 0; i < hidden; ++i)
            want[std::size_t(t) * hidden + i] = res[std::size_t(t) * hidden + i] * inv * wf[i];
        }
        check_close(label("add_rmsnorm residual", n, hidden).c_str(), dres.host(), res, 0, 0);
        check_close(label("add_rmsnorm out", n, hidden).c_str(), to_floats(out.host()), want, 1e-3f, kBf16Rtol);
      }
    }
  }
}

// MLA's use: normalise `dim` columns inside wider rows, into a strided output.
KERNEL_TEST(core_rmsnorm_strided) {
  Rng rng(3);
  struct Shape { int dim, x_stride, out_stride; };
  for (Shape sh : {Shape{512, 576, 512}, Shape{1536, 2112, 1536}, Shape{64, 64, 128}, Shape{20, 28, 20}}) {
    for (int n : {1, 7, 300}) {
      std::vector<float> xf, wf;
      Dev<std::uint16_t> x(rng.bf16s(std::size_t(n) * sh.x_stride, &xf, -3, 3)), w(rng.bf16s(sh.dim, &wf, 0.5f, 1.5f));
      std::vector<std::uint16_t> init(std::size_t(n) * sh.out_stride, float_to_bf16(7.0f));
      Dev<std::uint16_t> out(init);
      kernels::rmsnorm(x.as<bf16>(), sh.x_stride, w.as<bf16>(), 1e-6f, n, sh.dim, out.as<bf16>(), sh.out_stride,
                       nullptr);
      std::vector<float> want = to_floats(init);
      for (int t = 0; t < n; ++t) {
        double ss = 0;
        for (int i = 0; i < sh.dim; ++i) ss += double(xf[std::size_t(t) * sh.x_stride + i]) * xf[std::size_t(t) * sh.x_stride + i];
        const float inv = float(1.0 / std::sqrt(ss / sh.dim + 1e-6));
        for (int i = 0; i < sh.dim; ++i)
          want[std::size_t(t) * sh.out_stride + i] = xf[std::size_t(t) * sh.x_stride + i] * inv * wf[i];
      }
      check_close(label("rmsnorm", n, sh.dim).c_str(), to_floats(out.host()), want, 1e-3f, kBf16Rtol);
    }
  }
}

// cos_sin rows as the header specifies, from transformers' inverse frequencies.
std::vector<float> cos_sin_table(int max_pos, int rot_dim, float theta, float mscale) {
  std::vector<float> t(std::size_t(max_pos) * rot_dim);
  const int half = rot_dim / 2;
  for (int p = 0; p < max_pos; ++p)
    for (int i = 0; i < half; ++i) {
      const float inv = 1.0f / std::pow(theta, float(2 * i) / float(rot_dim));
      const float a = float(p) * inv;
      t[std::size_t(p) * rot_dim + i] = std::cos(a) * mscale;
      t[std::size_t(p) * rot_dim + half + i] = std::sin(a) * mscale;
    }
  return t;
}

KERNEL_TEST(core_rope) {
  Rng rng(4);
  struct Layout { int heads, head_stride, offset, rot_dim; bool interleaved; const char* name; };
  const Layout layouts[] = {
      {32, 128, 0, 128, false, "llama hd128"}, {14, 64, 0, 64, false, "qwen2 hd64"}, {8, 8, 0, 8, false, "stories hd8"},
      {16, 192, 128, 64, true, "deepseek q_pe"}, {1, 576, 512, 64, true, "deepseek k_pe"},
      {128, 192, 128, 64, true, "R1 q_pe, 128 heads (16 blocks per token)"}};
  const int max_pos = 5000;
  for (const Layout& L : layouts) {
    const auto cs = cos_sin_table(max_pos, L.rot_dim, 10000.0f, L.interleaved ? 1.2f : 1.0f);
    Dev<float> dcs(cs);
    for (int n : {1, 7, 300}) {
      const int row_stride = L.heads * L.head_stride + 8;  // rows wider than the heads (a fused qkv row)
      std::vector<float> xf;
      Dev<std::uint16_t> x(rng.bf16s(std::size_t(n) * row_stride, &xf, -2, 2));
      std::vector<std::int32_t> pos(n);
      for (auto& p : pos) p = rng.integer(0, max_pos - 1);
      Dev<std::int32_t> dpos(pos);
      kernels::rope(x.as<bf16>(), n, L.heads, row_stride, L.head_stride, L.offset, L.rot_dim, dpos.get(), dcs.get(),
                    L.interleaved, nullptr);
      std::vector<float> want = xf;
      const int half = L.rot_dim / 2;
      for (int t = 0; t < n; ++t)
        for (int h = 0; h < L.heads; ++h) {
          float* v = &want[std::size_t(t) * row_stride + std::size_t(h) * L.head_stride + L.offset];
          for (int i = 0; i < half; ++i) {  // Rope::apply
            const float c = cs[std::size_t(pos[t]) * L.rot_dim + i], s = cs[std::size_t(pos[t]) * L.rot_dim + half + i];
            float& a = L.interleaved ? v[2 * i] : v[i];
            float& b = L.interleaved ? v[2 * i + 1] : v[i + half];
            const float a0 = a, b0 = b;
            a = a0 * c - b0 * s;
            b = b0 * c + a0 * s;
          }
        }
      check_close((std::string("rope ") + L.name + " n=" + std::to_string(n)).c_str(), to_floats(x.host()), want,
                  1e-3f, kBf16Rtol);
    }
  }
}

KERNEL_TEST(core_silu_mul) {
  Rng rng(5);
  for (int inter : {64, 1408, 2048, 18432, 20}) {
    for (int n : {1, 7, 300}) {
      std::vector<float> gf;
      Dev<std::uint16_t> gu(rng.bf16s(std::size_t(n) * 2 * inter, &gf, -6, 6)), out(std::size_t(n) * inter);
      kernels::silu_mul(gu.as<bf16>(), n, inter, out.as<bf16>(), nullptr);
      std::vector<float> want(out.size());
      for (int t = 0; t < n; ++t)
        for (int i = 0; i < inter; ++i) {
          const float g = gf[std::size_t(t) * 2 * inter + i], u = gf[std::size_t(t) * 2 * inter + inter + i];
          want[std::size_t(t) * inter + i] = g / (1.0f + std::exp(-g)) * u;
        }
      check_close(label("silu_mul", n, inter).c_str(), to_floats(out.host()), want, 1e-3f, kBf16Rtol);
    }
  }
}

// scale = amax / 448 per 1x128 group (exact: one float division); q = x / scale rounded to e4m3, so
// |fp8(q) - x / scale| is at most half an e4m3 step: 2^-4 relative for normals, 2^-10 absolute below 2^-6.
KERNEL_TEST(core_quant_fp8_group128) {
  Rng rng(6);
  for (int k : {128, 512, 7168}) {
    for (int n : {1, 7, 300}) {
      std::vector<float> xf;
      auto xb = rng.bf16s(std::size_t(n) * k, &xf, -4, 4);
      for (int g = 0; g < k / 128; g += 3) xb[g * 128] = float_to_bf16(float(g + 1) * 10), xf[g * 128] = bf16_to_float(xb[g * 128]);
      if (k >= 256) std::fill(xb.begin() + 128, xb.begin() + 256, 0), std::fill(xf.begin() + 128, xf.begin() + 256, 0.0f);
      Dev<std::uint16_t> x(xb);
      Dev<std::uint8_t> q(xf.size());
      Dev<float> scales(std::size_t(n) * (k / 128));
      kernels::quant_fp8_group128(x.as<bf16>(), n, k, q.as<kernels::fp8>(), scales.get(), nullptr);
      const auto qh = q.host();
      const auto sh = scales.host();
      std::vector<float> want_s(sh.size()), got_q(qh.size()), want_q(qh.size());
      for (std::size_t g = 0; g < sh.size(); ++g) {
        float amax = 0;
        for (int j = 0; j < 128; ++j) amax = std::max(amax, std::fabs(xf[g * 128 + j]));
        want_s[g] = std::max(amax, 1e-10f) / 448.0f;
        for (int j = 0; j < 128; ++j) {
          got_q[g * 128 + j] = fp8_to_float(qh[g * 128 + j]);
          want_q[g * 128 + j] = xf[g * 128 + j] / want_s[g];
        }
      }
      check_close(label("quant_fp8 scales", n, k).c_str(), sh, want_s, 0, 1e-6f);
      check_close(label("quant_fp8 values", n, k).c_str(), got_q, want_q, 1.0f / 1024, 1.0f / 16);
    }
  }
}

KERNEL_TEST(core_to_bf16) {
  Rng rng(7);
  for (std::size_t count : {std::size_t(1), std::size_t(8), std::size_t(1003), std::size_t(1) << 20}) {
    const auto x = rng.floats(count, -1000, 1000);
    Dev<float> dx(x);
    Dev<std::uint16_t> out(count);
    kernels::to_bf16(dx.get(), count, out.as<bf16>(), nullptr);
    std::vector<float> want(count);
    for (std::size_t i = 0; i < count; ++i) want[i] = round_bf16(x[i]);
    check_close(("to_bf16 count=" + std::to_string(count)).c_str(), to_floats(out.host()), want, 0, 0);
  }
}

}  // namespace
}  // namespace troupe::kernel_test
