// GPU sampling against the cpu sampler (model/sampling): greedy and its tie rule, penalties, log-softmax
// logprobs and the top-N list, the kept set of min_p / top_k / top_p, and the distribution of many draws.
// The GPU draw is Gumbel-max over a counter-based hash, not the cpu's inverse CDF, so single draws are not
// compared; their distribution is (chi-square against softmax over the cpu's kept set).
#include "kernels/sampling/sampling.hpp"
#include "model/sampling/sampling.hpp"
#include "tests/kernels/device_util.hpp"
#include "tests/kernels/kernel_test.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <string>

namespace troupe::kernel_test {
namespace {

using kernels::SampleParams;

struct Out {
  std::vector<std::int32_t> tokens, top_ids;
  std::vector<float> logprob, top_lp;
};

Out run_sample(const std::vector<float>& logits, int vocab, const std::vector<SampleParams>& params, int max_lp = 0) {
  const int rows = int(params.size());
  Dev<float> dl(logits);
  Dev<SampleParams> dp(params);
  Dev<std::int32_t> tok(rows), ids(std::size_t(rows) * std::max(max_lp, 1));
  Dev<float> lp(rows), tlp(std::size_t(rows) * std::max(max_lp, 1));
  Dev<std::uint8_t> ws(kernels::sample_workspace_bytes(rows, vocab));
  kernels::sample(dl.get(), rows, vocab, dp.get(), ws.get(), tok.get(), lp.get(), max_lp ? ids.get() : nullptr,
                  max_lp ? tlp.get() : nullptr, max_lp, nullptr);
  return {tok.host(), ids.host(), lp.host(), tlp.host()};
}

SamplingOptions cpu_options(const SampleParams& p) {
  SamplingOptions o;
  o.temperature = p.temperature, o.top_p = p.top_p, o.min_p = p.min_p, o.top_k = p.top_k;
  o.presence_penalty = p.presence_penalty, o.frequency_penalty = p.frequency_penalty;
  o.repetition_penalty = p.repetition_penalty, o.logprobs = p.num_logprobs;
  return o;
}

KERNEL_TEST(sampling_greedy_and_logprobs) {
  Rng rng(31);
  for (int vocab : {1000, 129280}) {
    const int rows = 8, n_lp = 5;
    std::vector<float> logits = rng.floats(std::size_t(rows) * vocab, -10, 10);
    for (int r = 0; r < rows; r += 2) {  // ties at the maximum: the lowest id wins
      float* row = &logits[std::size_t(r) * vocab];
      const float mx = *std::max_element(row, row + vocab) + 1;
      row[vocab - 3] = row[700] = row[5 + r] = mx;
    }
    std::vector<SampleParams> params(rows);
    for (auto& p : params) p.temperature = 0, p.num_logprobs = n_lp;
    const Out got = run_sample(logits, vocab, params, n_lp);
    for (int r = 0; r < rows; ++r) {
      std::vector<float> row(logits.begin() + std::size_t(r) * vocab, logits.begin() + std::size_t(r + 1) * vocab);
      const SampleResult want = sample(row, cpu_options(params[r]), {}, {}, 1);
      const std::string what = "greedy vocab=" + std::to_string(vocab) + " row " + std::to_string(r);
      check(got.tokens[r] == want.token, what.c_str());
      check_close((what + " logprob").c_str(), {got.logprob[r]}, {want.logprob}, 1e-4f, 1e-5f);
      std::vector<float> gl(got.top_lp.begin() + r * n_lp, got.top_lp.begin() + (r + 1) * n_lp), wl;
      bool ids_ok = true;
      for (int j = 0; j < n_lp; ++j) {
        ids_ok &= got.top_ids[r * n_lp + j] == want.top[j].token;
        wl.push_back(want.top[j].logprob);
      }
      check(ids_ok, (what + " top ids").c_str());
      check_close((what + " top logprobs").c_str(), gl, wl, 1e-4f, 1e-5f);
    }
  }
}

KERNEL_TEST(sampling_top_k1_is_greedy_and_seeded_draws_repeat) {
  Rng rng(32);
  const int vocab = 32000, rows = 64;
  const std::vector<float> logits = rng.floats(std::size_t(rows) * vocab, -5, 5);
  std::vector<SampleParams> k1(rows), draw(rows), greedy(rows);
  for (int r = 0; r < rows; ++r) {
    k1[r].top_k = 1, k1[r].temperature = 0.8f, k1[r].seed = 1000 + r;
    draw[r].temperature = 1.0f, draw[r].seed = 7 + r, draw[r].step = 3;
    greedy[r].temperature = 0;
  }
  const Out g = run_sample(logits, vocab, greedy), a = run_sample(logits, vocab, k1);
  check(a.tokens == g.tokens, "top_k=1 equals greedy");
  const Out d1 = run_sample(logits, vocab, draw), d2 = run_sample(logits, vocab, draw);
  check(d1.tokens == d2.tokens, "same seed and step: same tokens");
  for (auto& p : draw) p.step = 4;
  const Out d3 = run_sample(logits, vocab, draw);
  check(d3.tokens != d1.tokens, "another step: other tokens");
  for (int r = 0; r < rows; ++r) {  // logprob of a drawn token: log_softmax of the raw logits
    std::vector<float> row(logits.begin() + std::size_t(r) * vocab, logits.begin() + std::size_t(r + 1) * vocab);
    const float want = log_softmax(row)[d1.tokens[r]];
    check_close("drawn token logprob", {d1.logprob[r]}, {want}, 1e-4f, 1e-5f);
  }
}

// Draws `rows` tokens from one logits row (a step per row) and checks them against the cpu sampler: the
// set of tokens the cpu draws over the same number of seeds is its kept set; the GPU must stay inside it
// and match softmax(z / T) renormalised over it (chi-square, about 5 standard deviations of slack).
void check_distribution(const std::vector<float>& row, SampleParams p, int rows, const std::string& what) {
  const int vocab = int(row.size());
  std::vector<float> logits;
  logits.reserve(std::size_t(rows) * vocab);
  std::vector<SampleParams> params(rows, p);
  for (int r = 0; r < rows; ++r) {
    logits.insert(logits.end(), row.begin(), row.end());
    params[r].step = std::uint64_t(r);
  }
  const Out got = run_sample(logits, vocab, params);
  std::set<int> kept;
  for (int s = 0; s < rows; ++s) {
    std::vector<float> l = row;
    kept.insert(sample(l, cpu_options(p), {}, {}, std::uint64_t(s)).token);
  }
  std::map<int, int> count;
  bool inside = true;
  for (int t : got.tokens) ++count[t], inside &= kept.count(t) > 0;
  check(inside, (what + ": draws stay in the cpu's kept set").c_str());
  double mx = -INFINITY, sum = 0;
  for (int t : kept) mx = std::max(mx, double(row[t]) / p.temperature);
  for (int t : kept) sum += std::exp(double(row[t]) / p.temperature - mx);
  double chi2 = 0;
  for (int t : kept) {
    const double e = rows * std::exp(double(row[t]) / p.temperature - mx) / sum, o = count[t];
    chi2 += (o - e) * (o - e) / e;
  }
  const double df = double(kept.size()) - 1;
  const bool ok = kept.size() == 1 ? count.size() == 1 : chi2 < df + 5 * std::sqrt(2 * df) + 10;
  if (!ok) std::printf("  %s: chi2 %.1f with %.0f degrees of freedom\n", what.c_str(), chi2, df);
  check(ok, (what + ": distribution matches softmax").c_str());
}

KERNEL_TEST(sampling_distribution) {
  Rng rng(33);
  const std::vector<float> row = rng.floats(16, -2, 2);
  struct Case { float t, top_p, min_p; int top_k; const char* name; };
  for (Case c : {Case{1.0f, 1.0f, 0.0f, -1, "plain"}, Case{0.7f, 1.0f, 0.0f, 5, "top_k 5"},
                 Case{1.0f, 0.8f, 0.0f, -1, "top_p 0.8"}, Case{1.3f, 1.0f, 0.1f, -1, "min_p 0.1"},
                 Case{1.0f, 0.9f, 0.05f, 8, "top_k 8 + top_p 0.9 + min_p 0.05"}}) {
    SampleParams p;
    p.temperature = c.t, p.top_p = c.top_p, p.min_p = c.min_p, p.top_k = c.top_k, p.seed = 42;
    check_distribution(row, p, 20000, c.name);
  }
  // Ties: 64 equal logits. top_k 10 keeps ids 0..9; top_p 0.5 over 20 equal ones keeps ids 0..9.
  SampleParams p;
  p.top_k = 10, p.seed = 5;
  check_distribution(std::vector<float>(64, 1.5f), p, 8000, "top_k 10 over ties");
  p.top_k = -1, p.top_p = 0.5f;
  check_distribution(std::vector<float>(20, 0.0f), p, 8000, "top_p 0.5 over ties");
}

// A large vocabulary with realistic filters: every draw lies in the cpu's kept set for that row.
KERNEL_TEST(sampling_large_vocab_filters) {
  Rng rng(34);
  const int vocab = 129280, rows = 16;
  std::vector<float> logits = rng.floats(std::size_t(rows) * vocab, -8, 8);
  std::vector<SampleParams> params(rows);
  for (int r = 0; r < rows; ++r) {
    params[r].temperature = 0.6f + 0.1f * (r % 5), params[r].top_k = r % 2 ? 50 : -1;
    params[r].top_p = r % 3 ? 0.9f : 1.0f, params[r].min_p = r % 4 == 0 ? 0.02f : 0.0f, params[r].seed = r;
  }
  const Out got = run_sample(logits, vocab, params);
  for (int r = 0; r < rows; ++r) {
    // The cpu sampler's kept set is a prefix of the tokens sorted by logit (ties by id): its length follows
    // from model/sampling's rules (min_p on softmax, then top_k, then the smallest prefix reaching top_p).
    // sampling_distribution checks these rules against the cpu sampler itself on a small vocabulary.
    std::vector<float> row(logits.begin() + std::size_t(r) * vocab, logits.begin() + std::size_t(r + 1) * vocab);
    std::vector<int> order(vocab);
    for (int i = 0; i < vocab; ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return row[a] > row[b]; });
    const float inv_t = 1.0f / params[r].temperature, zmax = row[order[0]] * inv_t;
    int kept = vocab;
    if (params[r].min_p > 0)
      kept = int(std::count_if(row.begin(), row.end(), [&](float x) { return std::exp(x * inv_t - zmax) >= params[r].min_p; }));
    if (params[r].top_k > 0) kept = std::min(kept, params[r].top_k);
    if (params[r].top_p < 1) {
      double total = 0, cum = 0;
      for (int i = 0; i < kept; ++i) total += std::exp(double(row[order[i]]) * inv_t - zmax);
      int keep = 0;
      while (keep < kept && (keep == 0 || cum < params[r].top_p * total)) cum += std::exp(double(row[order[keep++]]) * inv_t - zmax);
      kept = keep;
    }
    const int rank = int(std::find(order.begin(), order.end(), got.tokens[r]) - order.begin());
    check(rank < kept, ("large vocab row " + std::to_string(r) + " draws inside the kept prefix").c_str());
  }
}

KERNEL_TEST(sampling_penalties) {
  Rng rng(35);
  const int vocab = 1000, rows = 4;
  std::vector<float> logits = rng.floats(std::size_t(rows) * vocab, -5, 5);
  std::vector<SampleParams> params(rows);
  std::vector<std::uint16_t> counts(logits.size(), 0);
  std::vector<std::uint8_t> mask(logits.size(), 0);
  std::vector<float> want = logits;
  for (int r = 0; r < rows; ++r) {
    params[r].repetition_penalty = r == 0 ? 1.0f : 1.3f;
    params[r].presence_penalty = r == 1 ? 0.0f : 0.5f;
    params[r].frequency_penalty = r == 2 ? 0.0f : 0.25f;
    std::vector<std::int32_t> prompt(50), output(80);
    for (auto& t : prompt) t = rng.integer(0, vocab - 1);
    for (auto& t : output) t = rng.integer(0, 120);  // repeats
    for (auto t : prompt) mask[std::size_t(r) * vocab + t] = 1;
    for (auto t : output) ++counts[std::size_t(r) * vocab + t];
    std::span<float> row(want.data() + std::size_t(r) * vocab, vocab);
    apply_penalties(row, prompt, output, cpu_options(params[r]));
  }
  Dev<float> dl(logits);
  Dev<SampleParams> dp(params);
  Dev<std::uint16_t> dc(counts);
  Dev<std::uint8_t> dm(mask);
  kernels::apply_penalties(dl.get(), rows, vocab, dp.get(), dc.get(), dm.get(), nullptr);
  check_close("apply_penalties", dl.host(), want, 1e-5f, 1e-6f);
}

}  // namespace
}  // namespace troupe::kernel_test
