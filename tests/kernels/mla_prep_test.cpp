// kernels/mla/mla_prep.hpp against host references of the steps it fuses (model/cpu/dense.cpp rms_norm,
// model/cpu/rope_yarn.cpp Rope::apply): R1's fused q_a|kv_a row layout (16-byte path) and odd tiny widths (scalar
// path), interleaved and half-split rope, a padding token (slot -1: its cache row stays untouched), q_a or none.
// Tolerance as core_test: bf16 outputs, 1e-3 + one bf16 rounding of |want|.
#include "kernels/mla/mla_absorb.hpp"
#include "kernels/mla/mla_prep.hpp"
#include "tests/kernels/device_util.hpp"
#include "tests/kernels/kernel_test.hpp"

#include <cmath>
#include <string>

namespace troupe::kernel_test {
namespace {

using bf16 = __nv_bfloat16;
constexpr float kSentinel = 7.0f;  // cache / qfull cells the kernels must not write

struct Dims {
  int latent, rope, q_dim, kv_offset, stride, heads, nope;
  bool interleaved;
  const char* name;
};

std::vector<float> rms(const float* x, const std::vector<float>& w, int dim, float eps) {
  double ss = 0;
  for (int i = 0; i < dim; ++i) ss += double(x[i]) * x[i];
  const double inv = 1.0 / std::sqrt(ss / dim + eps);
  std::vector<float> o(dim);
  for (int i = 0; i < dim; ++i) o[i] = float(x[i] * inv * w[i]);
  return o;
}

// Rope::apply of one rope_dim-wide part.
void rope_ref(float* v, const std::vector<float>& cs, int pos, int rot, bool interleaved) {
  const int half = rot / 2;
  for (int i = 0; i < half; ++i) {
    const float c = cs[std::size_t(pos) * rot + i], s = cs[std::size_t(pos) * rot + half + i];
    float& a = interleaved ? v[2 * i] : v[i];
    float& b = interleaved ? v[2 * i + 1] : v[i + half];
    const float a0 = a, b0 = b;
    a = a0 * c - b0 * s, b = b0 * c + a0 * s;
  }
}

void run(const Dims& d, bool with_q) {
  Rng rng(53);
  const int n = 5, width = d.latent + d.rope, max_pos = 4096, slots = 16;
  const float eps = 1e-6f;
  std::vector<float> xf, kvw, qw;
  Dev<std::uint16_t> x(rng.bf16s(std::size_t(n) * d.stride, &xf, -2, 2));  // [q_a | kv_a] rows
  Dev<std::uint16_t> dkvw(rng.bf16s(d.latent, &kvw, 0.5f, 1.5f)), dqw(rng.bf16s(d.q_dim, &qw, 0.5f, 1.5f));
  const auto cs = rng.floats(std::size_t(max_pos) * d.rope);
  Dev<float> dcs(cs);
  std::vector<std::int32_t> pos(n), slot = {3, 9, -1, 0, 15};
  for (auto& p : pos) p = rng.integer(0, max_pos - 1);
  Dev<std::int32_t> dpos(pos), dslot(slot);
  const std::uint16_t sentinel = float_to_bf16(kSentinel);
  Dev<std::uint16_t> rows(std::vector<std::uint16_t>(std::size_t(n) * width, sentinel));
  Dev<std::uint16_t> cache(std::vector<std::uint16_t>(std::size_t(slots) * width, sentinel));
  Dev<std::uint16_t> qout(std::vector<std::uint16_t>(std::size_t(n) * d.q_dim, sentinel));
  kernels::MlaLatentPrep p;
  p.kv = x.as<bf16>() + d.kv_offset, p.kv_stride = d.stride, p.kv_norm = dkvw.as<bf16>();
  if (with_q) {
    p.q_a = x.as<bf16>(), p.q_stride = d.stride, p.q_dim = d.q_dim;
    p.q_norm = dqw.as<bf16>(), p.q_out = qout.as<bf16>();
  }
  p.eps = eps, p.latent_dim = d.latent, p.rope_dim = d.rope, p.cos_sin = dcs.get(), p.interleaved = d.interleaved;
  p.rows = rows.as<bf16>(), p.row_stride = width;
  kernels::AttnBatch b;
  b.num_tokens = n, b.positions = dpos.get(), b.slot_mapping = dslot.get();
  kernels::mla_latent_prep(p, b, cache.as<bf16>(), nullptr);

  std::vector<float> want_rows, want_cache(std::size_t(slots) * width, kSentinel), want_q;
  for (int t = 0; t < n; ++t) {
    const float* src = &xf[std::size_t(t) * d.stride];
    std::vector<float> row = rms(src + d.kv_offset, kvw, d.latent, eps);
    row.insert(row.end(), src + d.kv_offset + d.latent, src + d.kv_offset + width);
    rope_ref(row.data() + d.latent, cs, pos[t], d.rope, d.interleaved);
    want_rows.insert(want_rows.end(), row.begin(), row.end());
    if (slot[t] >= 0) std::copy(row.begin(), row.end(), want_cache.begin() + std::size_t(slot[t]) * width);
    const auto q = with_q ? rms(src, qw, d.q_dim, eps) : std::vector<float>(d.q_dim, kSentinel);
    want_q.insert(want_q.end(), q.begin(), q.end());
  }
  const std::string tag = std::string(d.name) + (with_q ? " with q_a" : " without q_a");
  check_close(("mla_latent_prep rows, " + tag).c_str(), to_floats(rows.host()), want_rows, 1e-3f, 1.0f / 128);
  check_close(("mla_latent_prep cache, " + tag).c_str(), to_floats(cache.host()), want_cache, 1e-3f, 1.0f / 128);
  check_close(("mla_latent_prep q_a, " + tag).c_str(), to_floats(qout.host()), want_q, 1e-3f, 1.0f / 128);

  // q_pe: q [n, heads, nope | rope] -> qfull [n, heads, latent | rope]'s rope part; the latent part untouched.
  const int qk = d.nope + d.rope;
  std::vector<float> qf;
  Dev<std::uint16_t> q(rng.bf16s(std::size_t(n) * d.heads * qk, &qf, -2, 2));
  Dev<std::uint16_t> qfull(std::vector<std::uint16_t>(std::size_t(n) * d.heads * width, sentinel));
  kernels::mla_q_pe(q.as<bf16>(), n, d.heads, d.nope, d.rope, dpos.get(), dcs.get(), d.interleaved, qfull.as<bf16>(),
                    d.latent, nullptr);
  std::vector<float> want_full(std::size_t(n) * d.heads * width, kSentinel);
  for (int t = 0; t < n; ++t)
    for (int h = 0; h < d.heads; ++h) {
      const std::size_t head = std::size_t(t) * d.heads + h;
      float* dst = &want_full[head * width + d.latent];
      std::copy_n(&qf[head * qk + d.nope], d.rope, dst);
      rope_ref(dst, cs, pos[t], d.rope, d.interleaved);
    }
  check_close(("mla_q_pe, " + tag).c_str(), to_floats(qfull.host()), want_full, 1e-3f, 1.0f / 128);
}

KERNEL_TEST(mla_latent_prep_and_q_pe) {
  // R1: rows [q_a 1536 | kv_a 512 + 64] of the fused projection (stride 2112), 128 heads of 128 + 64.
  const Dims r1{512, 64, 1536, 1536, 2112, 128, 128, true, "R1 fused rows"};
  // Odd widths: every pointer and stride off the 16-byte grid (the scalar path); rope split in halves.
  const Dims odd{20, 6, 12, 13, 39, 3, 5, false, "odd widths"};
  for (const Dims& d : {r1, odd})
    for (bool with_q : {true, false}) run(d, with_q);
}

// mla_absorb_q: the latent part against q_nope W_UK in float64 on the host (bf16 inputs, one bf16 rounding out),
// the rope part against rope_ref, as mla_q_pe's; R1's 128 heads (nope 128, v 128) and 3 tokens.
void run_absorb_q(bool interleaved) {
  Rng rng(71);
  const int n = 3, heads = 128, nope = 128, rope = 64, v = 128, latent = 512, max_pos = 4096;
  const int qk = nope + rope, width = latent + rope;
  std::vector<float> qf, wf;
  Dev<std::uint16_t> q(rng.bf16s(std::size_t(n) * heads * qk, &qf, -2, 2));
  Dev<std::uint16_t> kvb(rng.bf16s(std::size_t(heads) * (nope + v) * latent, &wf, -0.1f, 0.1f));
  const auto cs = rng.floats(std::size_t(max_pos) * rope);
  Dev<float> dcs(cs);
  std::vector<std::int32_t> pos(n);
  for (auto& p : pos) p = rng.integer(0, max_pos - 1);
  Dev<std::int32_t> dpos(pos);
  Dev<std::uint16_t> qfull(std::vector<std::uint16_t>(std::size_t(n) * heads * width, float_to_bf16(kSentinel)));
  kernels::mla_absorb_q(q.as<bf16>(), n, heads, nope, rope, v, kvb.as<bf16>(), latent, dpos.get(), dcs.get(),
                        interleaved, qfull.as<bf16>(), nullptr);
  std::vector<float> want(std::size_t(n) * heads * width);
  for (int t = 0; t < n; ++t)
    for (int h = 0; h < heads; ++h) {
      const std::size_t head = std::size_t(t) * heads + h;
      for (int c = 0; c < latent; ++c) {
        double acc = 0;
        for (int d = 0; d < nope; ++d)
          acc += double(qf[head * qk + d]) * wf[(std::size_t(h) * (nope + v) + d) * latent + c];
        want[head * width + c] = float(acc);
      }
      float* dst = &want[head * width + latent];
      std::copy_n(&qf[head * qk + nope], rope, dst);
      rope_ref(dst, cs, pos[t], rope, interleaved);
    }
  check_close(interleaved ? "mla_absorb_q, R1 widths, interleaved rope" : "mla_absorb_q, R1 widths, half rope",
              to_floats(qfull.host()), want, 1e-3f, 1.0f / 128);
}

KERNEL_TEST(mla_absorb_q_matches_w_uk_and_rope) {
  run_absorb_q(true);
  run_absorb_q(false);
  check(!kernels::mla_absorb_fits(5, 512, 64, 128, 128) && !kernels::mla_absorb_fits(1, 256, 64, 128, 128) &&
            kernels::mla_absorb_fits(1, 512, 64, 128, 128),
        "mla_absorb_fits: up to 4 tokens, latent 512 + rope 64 only");
}

// mla_qb_absorb: q = x W_qb^T (FP8 with 128x128 scales, float64 on the host, rounded to bf16 as the q_b GEMV's
// output is), then the latent part as q_nope W_UK and the rope part as rope_ref; R1's widths, one token.
void run_qb_absorb(bool interleaved) {
  Rng rng(73);
  const int heads = 128, nope = 128, rope = 64, v = 128, latent = 512, k = 1536, max_pos = 4096;
  const int qk = nope + rope, width = latent + rope, n = heads * qk;
  std::vector<float> xf, wf;
  Dev<std::uint16_t> x(rng.bf16s(k, &xf, -2, 2));
  const Fp8BlockWeights wq(n, k, rng);
  Dev<std::uint16_t> kvb(rng.bf16s(std::size_t(heads) * (nope + v) * latent, &wf, -0.1f, 0.1f));
  const auto cs = rng.floats(std::size_t(max_pos) * rope);
  Dev<float> dcs(cs);
  const std::vector<std::int32_t> pos = {rng.integer(0, max_pos - 1)};
  Dev<std::int32_t> dpos(pos);
  Dev<std::uint16_t> qfull(std::vector<std::uint16_t>(std::size_t(heads) * width, float_to_bf16(kSentinel)));
  check(kernels::mla_qb_absorb_fits(1, k, qk, nope, rope, latent), "mla_qb_absorb_fits: R1 widths, one token");
  kernels::mla_qb_absorb(x.as<bf16>(), wq.codes.as<__nv_fp8_e4m3>(), wq.dev_scales.get(), heads, v, kvb.as<bf16>(),
                         dpos.get(), dcs.get(), interleaved, qfull.as<bf16>(), nullptr);
  std::vector<float> q(n), want(std::size_t(heads) * width);
  for (int r = 0; r < n; ++r) {
    double acc = 0;
    for (int e = 0; e < k; ++e) {
      const double scale = wq.scales[std::size_t(r / 128) * (k / 128) + e / 128];
      acc += double(xf[e]) * wq.values[std::size_t(r) * k + e] * scale;
    }
    q[r] = bf16_to_float(float_to_bf16(float(acc)));
  }
  for (int h = 0; h < heads; ++h) {
    for (int c = 0; c < latent; ++c) {
      double acc = 0;
      for (int d = 0; d < nope; ++d) acc += double(q[h * qk + d]) * wf[(std::size_t(h) * (nope + v) + d) * latent + c];
      want[std::size_t(h) * width + c] = float(acc);
    }
    float* dst = &want[std::size_t(h) * width + latent];
    std::copy_n(&q[h * qk + nope], rope, dst);
    rope_ref(dst, cs, pos[0], rope, interleaved);
  }
  // A float32 sum may round q to the bf16 next to the host's; one such q moves a latent value by ~0.1 ulp(q).
  check_close(interleaved ? "mla_qb_absorb, R1 widths, interleaved rope" : "mla_qb_absorb, R1 widths, half rope",
              to_floats(qfull.host()), want, 2e-2f, 1.0f / 64);
}

KERNEL_TEST(mla_qb_absorb_matches_q_b_then_w_uk) {
  run_qb_absorb(true);
  run_qb_absorb(false);
  check(!kernels::mla_qb_absorb_fits(2, 1536, 192, 128, 64, 512) &&
            !kernels::mla_qb_absorb_fits(1, 512, 192, 128, 64, 512),
        "mla_qb_absorb_fits: one token, R1 / V3 widths only");
}

}  // namespace
}  // namespace troupe::kernel_test
