// kernels/gemm (cuBLASLt) against float64 host matmuls. Shapes: m in {1, 7, 16, 64, 300, 4096} against
// DeepSeek-V3 projection shapes (n x k) and tiny ones. For large m the reference checks 8 rows (the first,
// the last and 6 random ones): every output row comes from the same kernel, and a layout error shows in any.
//
// Tolerances. bf16 inputs here are multiples of 1/128 in [-1, 1): every product is exact in float32, so the
// only errors are float32 accumulation (at most ~k * 2^-24 * sum|terms|, far less in practice: atol 1e-6 * k)
// and the output's bf16 rounding (relative 2^-9: rtol 2^-8). FP8: the reference dequantizes (value * its
// block scales) and multiplies in float64; Hopper's FP8 tensor cores accumulate a 128-wide block with reduced
// precision before cuBLASLt applies the scales in float32, so we allow 0.5% of the output's RMS plus the bf16
// rounding. A wrong scale layout moves outputs by O(RMS).
#include "kernels/gemm/gemm.hpp"
#include "tests/kernels/device_util.hpp"
#include "tests/kernels/kernel_test.hpp"

#include <algorithm>
#include <cmath>
#include <string>

namespace troupe::kernel_test {
namespace {

using kernels::Gemm;
using kernels::OutType;
using bf16 = __nv_bfloat16;
using fp8 = __nv_fp8_e4m3;

const int kMs[] = {1, 7, 16, 64, 300, 4096};

struct Fast {  // xorshift: host data for 100M-element operands in well under a second
  std::uint64_t s;
  std::uint32_t next() {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    return std::uint32_t(s >> 32);
  }
};

// bf16 values k/128, k in [-128, 128): exact in bf16 and their products exact in float32.
void fill_bf16(std::vector<std::uint16_t>& v, std::vector<float>& f, Fast& r) {
  f.resize(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    f[i] = float(int(r.next() % 256) - 128) / 128.0f;
    v[i] = float_to_bf16(f[i]);
  }
}

// e4m3 codes with exponent field 3..10 (|value| in [2^-4, 2^4)), random sign.
void fill_fp8(std::vector<std::uint8_t>& v, Fast& r) {
  for (auto& b : v) {
    const std::uint32_t x = r.next();
    b = std::uint8_t(((x & 1) << 7) | ((3 + (x >> 1) % 8) << 3) | ((x >> 4) & 7));
  }
}

std::vector<int> sample_rows(int m, Rng& rng) {
  if (m <= 8) {
    std::vector<int> all(m);
    for (int i = 0; i < m; ++i) all[i] = i;
    return all;
  }
  std::vector<int> rows{0, m - 1};
  while (rows.size() < 8) rows.push_back(rng.integer(1, m - 2));
  return rows;
}

std::string shape(const char* what, int m, int n, int k) {
  return std::string(what) + " m=" + std::to_string(m) + " n=" + std::to_string(n) + " k=" + std::to_string(k);
}

KERNEL_TEST(gemm_bf16) {
  Gemm gemm;
  Rng rng(21);
  Fast fr{0x1234567};
  struct NK { int n, k; };
  for (NK s : {NK{7168, 2048}, NK{2112, 7168}, NK{24576, 1536}, NK{4096, 512}, NK{8, 16}, NK{24, 40}}) {
    std::vector<std::uint16_t> wb(std::size_t(s.n) * s.k);
    std::vector<float> wf;
    fill_bf16(wb, wf, fr);
    Dev<std::uint16_t> w(wb);
    for (int m : kMs) {
      std::vector<std::uint16_t> ab(std::size_t(m) * s.k);
      std::vector<float> af;
      fill_bf16(ab, af, fr);
      Dev<std::uint16_t> a(ab), c(std::size_t(m) * s.n);
      const bool f32 = m == 7 || m == 300;  // float32 output, accumulating onto C
      std::vector<float> c0 = f32 ? rng.floats(std::size_t(m) * s.n) : std::vector<float>();
      Dev<float> cf(c0);
      gemm.bf16(a.as<bf16>(), w.as<bf16>(), f32 ? static_cast<void*>(cf.get()) : c.get(),
                f32 ? OutType::f32 : OutType::bf16, m, s.n, s.k, nullptr, f32);
      const auto rows = sample_rows(m, rng);
      std::vector<float> got, want;
      const auto ch = c.host();
      const auto cfh = cf.host();
      for (int r : rows)
        for (int j = 0; j < s.n; ++j) {
          double acc = f32 ? c0[std::size_t(r) * s.n + j] : 0.0;
          const float* ar = &af[std::size_t(r) * s.k];
          const float* wr = &wf[std::size_t(j) * s.k];
          for (int e = 0; e < s.k; ++e) acc += double(ar[e]) * wr[e];
          want.push_back(float(acc));
          got.push_back(f32 ? cfh[std::size_t(r) * s.n + j] : bf16_to_float(ch[std::size_t(r) * s.n + j]));
        }
      check_close(shape(f32 ? "bf16 gemm (f32 out, accumulate)" : "bf16 gemm", m, s.n, s.k).c_str(), got, want,
                  1e-3f + 1e-6f * s.k, f32 ? 1e-5f : 1.0f / 256);
    }
  }
}

// MLA absorption: per head h, q_lat = q_nope W_UK_h (W_UK_h = rows [h*256, h*256+128) of kv_b_proj, used
// as [k=128, n=512]: w_transposed) and o = o_lat W_UV_h^T (rows [h*256+128, h*256+256): [n=128, k=512]).
KERNEL_TEST(gemm_bf16_batched_mla) {
  Gemm gemm;
  Fast fr{0xabcdef};
  const int heads = 16, nope = 128, v = 128, latent = 512;
  std::vector<std::uint16_t> wb(std::size_t(heads) * (nope + v) * latent);
  std::vector<float> wf;
  fill_bf16(wb, wf, fr);
  Dev<std::uint16_t> w(wb);
  for (int m : {1, 7, 64}) {
    for (bool uk : {true, false}) {
      const int k = uk ? nope : latent, n = uk ? latent : v;
      std::vector<std::uint16_t> ab(std::size_t(m) * heads * k);
      std::vector<float> af;
      fill_bf16(ab, af, fr);
      Dev<std::uint16_t> a(ab), c(std::size_t(m) * heads * n);
      const bf16* wp = w.as<bf16>() + (uk ? 0 : std::size_t(nope) * latent);
      gemm.bf16_batched(a.as<bf16>(), heads * k, k, wp, latent, (long long)(nope + v) * latent, c.as<bf16>(),
                        heads * n, n, heads, m, n, k, uk, nullptr);
      std::vector<float> want(c.size());
      for (int t = 0; t < m; ++t)
        for (int h = 0; h < heads; ++h)
          for (int j = 0; j < n; ++j) {
            double acc = 0;
            for (int e = 0; e < k; ++e) {
              const std::size_t wi = uk ? (std::size_t(h) * (nope + v) + e) * latent + j
                                        : (std::size_t(h) * (nope + v) + nope + j) * latent + e;
              acc += double(af[(std::size_t(t) * heads + h) * k + e]) * wf[wi];
            }
            want[(std::size_t(t) * heads + h) * n + j] = float(acc);
          }
      check_close(shape(uk ? "batched W_UK (w_transposed)" : "batched W_UV", m, n, k).c_str(), to_floats(c.host()),
                  want, 1e-3f + 1e-6f * k, 1.0f / 256);
    }
  }
}

KERNEL_TEST(gemm_fp8_block) {
  Gemm gemm;
  Rng rng(23);
  Fast fr{0x5555};
  struct NK { int n, k; };
  for (NK s : {NK{7168, 2048}, NK{2112, 7168}, NK{24576, 1536}, NK{4096, 512}, NK{128, 128}, NK{200, 256},
               NK{64, 384}}) {
    const int kb = s.k / 128, nb = (s.n + 127) / 128;
    std::vector<std::uint8_t> wq(std::size_t(s.n) * s.k);
    fill_fp8(wq, fr);
    const std::vector<float> ws = rng.floats(std::size_t(nb) * kb, 0.5f / 64, 2.0f / 64);
    Dev<std::uint8_t> w(wq);
    Dev<float> dws(ws);
    const std::vector<float> wf = decode_fp8(wq);
    for (int m : kMs) {
      std::vector<std::uint8_t> aq(std::size_t(m) * s.k);
      fill_fp8(aq, fr);
      const std::vector<float> as = rng.floats(std::size_t(m) * kb, 0.5f / 16, 2.0f / 16);
      Dev<std::uint8_t> a(aq);
      const std::vector<float> af = decode_fp8(aq);
      Dev<float> das(as);
      Dev<std::uint16_t> c(std::size_t(m) * s.n);
      gemm.fp8_block(a.as<fp8>(), das.get(), w.as<fp8>(), dws.get(), c.as<bf16>(), m, s.n, s.k, nullptr);
      const auto rows = sample_rows(m, rng);
      const auto ch = c.host();
      std::vector<float> got, want;
      double ss = 0;
      for (int r : rows)
        for (int j = 0; j < s.n; ++j) {
          const double acc = fp8_block_ref(af, as, wf, ws, s.k, r, j);
          want.push_back(float(acc));
          got.push_back(bf16_to_float(ch[std::size_t(r) * s.n + j]));
          ss += acc * acc;
        }
      const float rms = float(std::sqrt(ss / want.size()));
      check_close(shape("fp8 block gemm", m, s.n, s.k).c_str(), got, want, 5e-3f * rms, 1.0f / 256);
    }
  }
}

// Bad shapes are refused with a clear error, not a crash.
KERNEL_TEST(gemm_rejects_bad_k) {
  Gemm gemm;
  bool threw = false;
  try {
    gemm.fp8_block(nullptr, nullptr, nullptr, nullptr, nullptr, 4, 128, 100, nullptr);
  } catch (const std::invalid_argument&) {
    threw = true;
  }
  check(threw, "fp8_block refuses k % 128 != 0");
}

}  // namespace
}  // namespace troupe::kernel_test
