#include "model/cpu/moe.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace troupe::cpu {

namespace {

// Indices of the k largest values, ties to the lower index (torch.topk leaves ties unspecified).
std::vector<std::uint32_t> top_k(const std::vector<float>& v, std::uint32_t k) {
  std::vector<std::uint32_t> idx(v.size());
  std::iota(idx.begin(), idx.end(), 0u);
  std::stable_sort(idx.begin(), idx.end(), [&](std::uint32_t a, std::uint32_t b) { return v[a] > v[b]; });
  idx.resize(std::min<std::size_t>(k, idx.size()));
  return idx;
}

// Keeps the topk_group best groups of `choice` (scored by `group_score`); the others get `fill`.
void limit_to_groups(const ModelConfig& c, std::vector<float>& choice, float fill, bool sum_top2) {
  const std::uint32_t groups = c.n_group, per = c.n_routed_experts / c.n_group;
  std::vector<float> gscore(groups);
  for (std::uint32_t g = 0; g < groups; ++g) {
    std::vector<float> members(choice.begin() + g * per, choice.begin() + (g + 1) * per);
    std::sort(members.begin(), members.end(), std::greater<float>());
    gscore[g] = sum_top2 ? members[0] + (per > 1 ? members[1] : 0.0f) : members[0];
  }
  std::vector<bool> keep(groups, false);
  for (std::uint32_t g : top_k(gscore, c.topk_group)) keep[g] = true;
  for (std::uint32_t e = 0; e < c.n_routed_experts; ++e)
    if (!keep[e / per]) choice[e] = fill;
}

}  // namespace

Route route_token(const ModelConfig& c, const float* logits, const float* bias) {
  const std::uint32_t n = c.n_routed_experts;
  std::vector<float> scores(logits, logits + n);
  if (c.scoring_func == "sigmoid") {
    for (float& s : scores) s = 1.0f / (1.0f + std::exp(-s));
  } else {
    const float m = *std::max_element(scores.begin(), scores.end());
    double sum = 0;
    for (float& s : scores) sum += (s = std::exp(s - m));
    for (float& s : scores) s = float(s / sum);
  }
  std::vector<float> choice = scores;
  const bool v3 = c.topk_method == "noaux_tc";
  if (bias)
    for (std::uint32_t e = 0; e < n; ++e) choice[e] += bias[e];
  if (v3)
    limit_to_groups(c, choice, -std::numeric_limits<float>::infinity(), true);
  else if (c.topk_method == "group_limited_greedy")
    limit_to_groups(c, choice, 0.0f, false);
  Route r;
  r.expert = top_k(choice, c.num_experts_per_tok);
  std::sort(r.expert.begin(), r.expert.end());
  for (std::uint32_t e : r.expert) r.weight.push_back(scores[e]);
  const float factor = float(c.routed_scaling_factor);
  const bool norm = c.norm_topk_prob && (v3 || c.num_experts_per_tok > 1);
  float denom = 1e-20f;
  for (float wt : r.weight) denom += wt;
  for (float& wt : r.weight) {
    if (norm) wt /= denom;
    // V3 scales after normalizing; V2's own code scales only when it does not normalize.
    if (v3 || !norm) wt *= factor;
  }
  return r;
}

void mlp_forward(ThreadPool& pool, const MlpWeights& w, std::uint32_t hidden, const float* x, std::size_t rows,
                 float* y) {
  std::vector<float> g(rows * w.inter), u(rows * w.inter);
  linear(pool, x, rows, hidden, w.gate.data(), w.inter, g.data());
  linear(pool, x, rows, hidden, w.up.data(), w.inter, u.data());
  for (std::size_t i = 0; i < g.size(); ++i) g[i] = silu(g[i]) * u[i];
  linear(pool, g.data(), rows, w.inter, w.down.data(), hidden, y);
}

void moe_forward(ThreadPool& pool, const ModelConfig& c, const MoeWeights& w, const float* x, std::size_t rows,
                 float* y) {
  const std::uint32_t H = c.hidden_size, E = c.n_routed_experts, K = c.num_experts_per_tok;
  std::vector<float> logits(rows * E);
  linear(pool, x, rows, H, w.router.data(), E, logits.data());
  std::vector<Route> routes(rows);
  for (std::size_t t = 0; t < rows; ++t)
    routes[t] = route_token(c, logits.data() + t * E, w.bias.empty() ? nullptr : w.bias.data());
  // Each expert runs once over its tokens; results land in slot (token, k) and are summed per token in
  // ascending expert order afterwards, so the sum never depends on scheduling.
  std::vector<float> slots(rows * K * H, 0.0f);
  std::vector<float> xin, yout;
  const auto first = w.first_expert, last = first + std::uint32_t(w.experts.size());
  for (std::uint32_t e = first; e < last && e < E; ++e) {
    std::vector<std::size_t> where;  // t * K + k
    for (std::size_t t = 0; t < rows; ++t)
      for (std::uint32_t k = 0; k < routes[t].expert.size(); ++k)
        if (routes[t].expert[k] == e) where.push_back(t * K + k);
    if (where.empty()) continue;
    xin.resize(where.size() * H);
    yout.resize(where.size() * H);
    for (std::size_t r = 0; r < where.size(); ++r)
      std::copy(x + (where[r] / K) * H, x + (where[r] / K + 1) * H, xin.begin() + r * H);
    mlp_forward(pool, w.experts[e - first], H, xin.data(), where.size(), yout.data());
    for (std::size_t r = 0; r < where.size(); ++r) {
      const float wt = routes[where[r] / K].weight[where[r] % K];
      for (std::uint32_t i = 0; i < H; ++i) slots[where[r] * H + i] = yout[r * H + i] * wt;
    }
  }
  std::fill(y, y + rows * H, 0.0f);
  for (std::size_t t = 0; t < rows; ++t)
    for (std::uint32_t k = 0; k < routes[t].expert.size(); ++k)
      for (std::uint32_t i = 0; i < H; ++i) y[t * H + i] += slots[(t * K + k) * H + i];
  if (w.shared.inter) {
    std::vector<float> sh(rows * H);
    mlp_forward(pool, w.shared, H, x, rows, sh.data());
    for (std::size_t i = 0; i < sh.size(); ++i) y[i] += sh[i];
  }
}

}  // namespace troupe::cpu
