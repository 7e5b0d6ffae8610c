// MoE kernels against host references: the routers as model/cpu/moe.cpp route_token computes them, and the
// experts as dequantize-then-matmul in float64 (model/cpu/deepseek_ops.cpp semantics: FP8 value times its
// 128x128 block's weight_scale_inv).
//
// Routing tolerance: ids exact (ties to the lower id), weights within 1e-6 + 1e-5 relative (float32 sigmoid /
// softmax / division differ from the host's by an ulp or two). Random logits can put two experts within an ulp
// of each other at the top-k boundary, where the host's and the device's expf may order them differently; such
// a token is accepted only if the host's own scores of both picks differ by less than 1e-5 (printed, counted).
// Experts tolerance: |got - want| <= 2e-2 * rms(want - out_before). The kernel rounds h = silu(g) * u to bf16
// (2^-9 relative per element, random signs) before the down GEMM, so an output moves by about
// 2^-9 * rms(y) ~ 2e-3 rms (1 sigma); 2e-2 leaves room for the largest of 10^5 samples. A wrong expert, row or
// scale block changes outputs by O(rms).
#include "kernels/moe/moe.hpp"
#include "tests/kernels/kernel_test.hpp"
#include "tests/kernels/mla_moe_util.hpp"

#include <cmath>
#include <limits>
#include <numeric>

namespace {

using namespace troupe::kernel_test;
using troupe::kernels::MoeRouting;
using troupe::kernels::MoeWeights;

// ---------- routing ----------

struct HostRoute {
  std::vector<int> ids;
  std::vector<float> weights;
  std::vector<float> choice;  // selection scores after group limiting (for the near-tie check)
};

std::vector<int> host_top_k(const std::vector<float>& v, int k) {
  std::vector<int> idx(v.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) { return v[a] > v[b]; });
  idx.resize(k);
  return idx;
}

// model/cpu/moe.cpp route_token with the config fields spelled as MoeRouting (V3 <=> group_by_top2_sum).
HostRoute host_route(const MoeRouting& r, const float* logits, const std::vector<float>& bias) {
  const int E = r.num_experts;
  std::vector<float> s(logits, logits + E);
  if (r.sigmoid) {
    for (float& v : s) v = 1.0f / (1.0f + std::exp(-v));
  } else {
    const float m = *std::max_element(s.begin(), s.end());
    double sum = 0;
    for (float& v : s) sum += (v = std::exp(v - m));
    for (float& v : s) v = float(v / sum);
  }
  HostRoute out;
  out.choice = s;
  for (int e = 0; e < E && !bias.empty(); ++e) out.choice[e] += bias[e];
  const bool v3 = r.group_by_top2_sum;
  if (v3 || r.n_group > 1) {
    const int per = E / r.n_group;
    std::vector<float> gscore(r.n_group);
    for (int g = 0; g < r.n_group; ++g) {
      std::vector<float> m(out.choice.begin() + g * per, out.choice.begin() + (g + 1) * per);
      std::sort(m.begin(), m.end(), std::greater<float>());
      gscore[g] = v3 ? m[0] + (per > 1 ? m[1] : 0.0f) : m[0];
    }
    std::vector<bool> keep(r.n_group, false);
    for (int g : host_top_k(gscore, r.topk_group)) keep[g] = true;
    for (int e = 0; e < E; ++e)
      if (!keep[e / per]) out.choice[e] = v3 ? -std::numeric_limits<float>::infinity() : 0.0f;
  }
  out.ids = host_top_k(out.choice, r.top_k);
  std::sort(out.ids.begin(), out.ids.end());
  for (int e : out.ids) out.weights.push_back(s[e]);
  const bool norm = r.norm_topk_prob && (v3 || r.top_k > 1);
  float denom = 1e-20f;
  for (float w : out.weights) denom += w;
  for (float& w : out.weights) {
    if (norm) w /= denom;
    if (v3 || !norm) w *= r.routed_scaling_factor;
  }
  return out;
}

void run_routing(const char* what, MoeRouting r, int n, bool ties, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.f, 1.5f);
  std::vector<float> logits(std::size_t(n) * r.num_experts), bias;
  for (float& v : logits) v = ties ? std::round(nd(rng) * 2.f) / 2.f : nd(rng);  // ties: a few levels only
  if (r.group_by_top2_sum) {
    std::uniform_real_distribution<float> bd(-0.2f, 0.2f);
    bias.resize(r.num_experts);
    for (float& b : bias) b = ties ? 0.f : bd(rng);
  }
  DevBuf<float> d_logits(logits), d_bias(bias.empty() ? std::vector<float>{0.f} : bias);
  const int row = r.top_k + r.always_on;  // routed choices, then the always-on (shared) experts
  DevBuf<std::int32_t> d_ids(std::size_t(n) * row);
  DevBuf<float> d_w(std::size_t(n) * row);
  r.correction_bias = bias.empty() ? nullptr : d_bias.p;
  troupe::kernels::moe_route(d_logits.p, n, r, d_ids.p, d_w.p, nullptr);
  const auto ids = d_ids.download();
  const auto wts = d_w.download();
  std::vector<float> got_w, want_w;
  int mismatched = 0, near_ties = 0, bad_always_on = 0;
  for (int t = 0; t < n; ++t) {
    const HostRoute h = host_route(r, logits.data() + std::size_t(t) * r.num_experts, bias);
    const std::size_t r0 = std::size_t(t) * row;
    for (int j = 0; j < r.always_on; ++j)
      bad_always_on += ids[r0 + r.top_k + j] != r.num_experts + j || wts[r0 + r.top_k + j] != 1.0f;
    const std::vector<int> got(ids.begin() + r0, ids.begin() + r0 + r.top_k);
    if (got == h.ids) {
      for (int j = 0; j < r.top_k; ++j) got_w.push_back(wts[r0 + j]), want_w.push_back(h.weights[j]);
      continue;
    }
    // Accept only a swap across an ulp-level tie of the host's own selection scores.
    float kth = std::numeric_limits<float>::infinity();
    for (int e : h.ids) kth = std::min(kth, h.choice[e]);
    bool near = !ties;
    for (int e : got) near = near && e >= 0 && e < r.num_experts && h.choice[e] >= kth - 1e-5f * std::max(1.f, std::fabs(kth));
    (near ? near_ties : mismatched)++;
  }
  if (near_ties) std::printf("  %s: %d of %d tokens differ across an ulp-level tie (accepted)\n", what, near_ties, n);
  if (mismatched) std::printf("  %s: %d of %d tokens chose other experts\n", what, mismatched, n);
  check(mismatched == 0, what);
  check(bad_always_on == 0, "always-on experts follow the routed choices with weight 1");
  check(near_ties * 100 <= n, "near ties stay rare (<= 1% of tokens)");
  check_close(what, got_w, want_w, 1e-6f, 1e-5f);
}

MoeRouting routing(int E, int K, int groups, int topk_group, bool v3, bool norm, float factor) {
  MoeRouting r;
  r.num_experts = E, r.top_k = K, r.n_group = groups, r.topk_group = topk_group;
  r.sigmoid = v3, r.group_by_top2_sum = v3, r.norm_topk_prob = norm, r.routed_scaling_factor = factor;
  return r;
}

}  // namespace

KERNEL_TEST(moe_route_v3) {
  run_routing("R1 256 experts, 8 groups keep 4, top-8", routing(256, 8, 8, 4, true, true, 2.5f), 333, false, 21);
  run_routing("tiny v3 12 experts, 3 groups keep 2, top-3", routing(12, 3, 3, 2, true, true, 2.5f), 257, false, 22);
  run_routing("v3 without norm", routing(64, 4, 4, 2, true, false, 1.5f), 100, false, 23);
  run_routing("R1 with ties (bias 0, logits on a 0.5 grid)", routing(256, 8, 8, 4, true, true, 2.5f), 200, true, 24);
  run_routing("tiny v3 with ties", routing(12, 3, 3, 2, true, true, 2.5f), 100, true, 25);
  MoeRouting shared = routing(256, 8, 8, 4, true, true, 2.5f);
  shared.always_on = 1;  // R1's shared expert as expert 256
  run_routing("R1 top-8 + 1 always-on expert", shared, 97, false, 26);
}

KERNEL_TEST(moe_route_v2) {
  run_routing("V2-Lite greedy 64 experts top-6", routing(64, 6, 1, 1, false, false, 1.0f), 300, false, 31);
  run_routing("V2 group_limited_greedy 160 experts 8 groups keep 3", routing(160, 6, 8, 3, false, false, 16.f), 300,
              false, 32);
  run_routing("V2 greedy, norm_topk_prob", routing(64, 6, 1, 1, false, true, 16.f), 100, false, 33);
  run_routing("V2 top-1 with norm (no norm, scaled)", routing(16, 1, 1, 1, false, true, 2.f), 100, false, 34);
  run_routing("V2 greedy with ties", routing(64, 6, 1, 1, false, false, 1.0f), 200, true, 35);
  run_routing("V2 group limited with ties", routing(160, 6, 8, 3, false, false, 1.0f), 200, true, 36);
  MoeRouting shared = routing(64, 6, 1, 1, false, false, 1.0f);
  shared.always_on = 2;  // V2-Lite's two shared experts as experts 64 and 65
  run_routing("V2-Lite top-6 + 2 always-on experts", shared, 101, false, 37);
}

KERNEL_TEST(moe_route_rejects_bad_config) {
  bool threw = false;
  try {
    troupe::kernels::moe_route(nullptr, 1, routing(12, 3, 5, 2, true, true, 1.f), nullptr, nullptr, nullptr);
  } catch (const std::invalid_argument&) {
    threw = true;
  }
  check(threw, "n_group that does not divide the experts is refused");
}
