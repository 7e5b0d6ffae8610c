#include "model/sampling/sampling.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <unordered_set>

namespace troupe {
namespace {
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

std::uint64_t mix(std::uint64_t x) {  // splitmix64's finalizer
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

std::int32_t argmax(std::span<const float> v) {  // first maximum: ties go to the lowest id
  return std::int32_t(std::max_element(v.begin(), v.end()) - v.begin());
}

// Token ids ordered by probability (descending; ties by id) and their softmax probabilities.
std::vector<std::int32_t> by_probability(std::span<const float> logits) {
  std::vector<std::int32_t> ids(logits.size());
  std::iota(ids.begin(), ids.end(), 0);
  std::stable_sort(ids.begin(), ids.end(), [&](auto a, auto b) { return logits[a] > logits[b]; });
  return ids;
}

std::vector<float> softmax(std::span<const float> logits) {
  float mx = *std::max_element(logits.begin(), logits.end());
  std::vector<float> p(logits.size());
  double sum = 0;
  for (std::size_t i = 0; i < p.size(); ++i) sum += (p[i] = logits[i] == kNegInf ? 0.0f : std::exp(logits[i] - mx));
  for (auto& x : p) x = float(x / sum);
  return p;
}

// min_p, then top_k, then top_p (vLLM's order); masked tokens become -inf.
void filter(std::span<float> logits, const SamplingOptions& o) {
  if (o.min_p > 0) {
    auto p = softmax(logits);
    float cut = o.min_p * *std::max_element(p.begin(), p.end());
    for (std::size_t i = 0; i < p.size(); ++i)
      if (p[i] < cut) logits[i] = kNegInf;
  }
  bool top_k = o.top_k > 0 && std::size_t(o.top_k) < logits.size();
  if (!top_k && o.top_p >= 1.0f) return;
  auto order = by_probability(logits);
  if (top_k) {
    for (std::size_t i = std::size_t(o.top_k); i < order.size(); ++i) logits[order[i]] = kNegInf;
    order.resize(std::size_t(o.top_k));
  }
  if (o.top_p < 1.0f) {
    auto p = softmax(logits);
    double cum = 0;
    for (std::size_t i = 0; i < order.size(); ++i) {
      if (cum >= o.top_p && i > 0) logits[order[i]] = kNegInf;  // the smallest prefix reaching top_p stays
      cum += p[order[i]];
    }
  }
}

// Inverse-CDF draw over the probabilities in token-id order: deterministic for a given uniform.
std::int32_t draw(std::span<const float> logits, double u) {
  auto p = softmax(logits);
  double cum = 0;
  std::int32_t last = 0;
  for (std::size_t i = 0; i < p.size(); ++i) {
    if (p[i] <= 0) continue;
    last = std::int32_t(i);
    cum += p[i];
    if (u < cum) return last;
  }
  return last;  // rounding left u above the total
}

void fill_logprobs(SampleResult& r, std::span<const float> raw, std::int32_t n) {
  auto lp = log_softmax(raw);
  r.logprob = lp[std::size_t(r.token)];
  auto order = by_probability(raw);
  for (std::int32_t i = 0; i < n && std::size_t(i) < order.size(); ++i) r.top.push_back({order[i], lp[order[i]]});
}
}  // namespace

void apply_penalties(std::span<float> logits, std::span<const std::int32_t> prompt,
                     std::span<const std::int32_t> output, const SamplingOptions& o) {
  auto valid = [&](std::int32_t t) { return t >= 0 && std::size_t(t) < logits.size(); };
  if (o.repetition_penalty != 1.0f) {
    std::unordered_set<std::int32_t> seen(prompt.begin(), prompt.end());
    seen.insert(output.begin(), output.end());
    for (auto t : seen) {
      if (!valid(t)) continue;
      float& l = logits[std::size_t(t)];
      l = l > 0 ? l / o.repetition_penalty : l * o.repetition_penalty;
    }
  }
  if (o.presence_penalty == 0.0f && o.frequency_penalty == 0.0f) return;
  std::unordered_map<std::int32_t, int> count;
  for (auto t : output) ++count[t];
  for (auto [t, n] : count)
    if (valid(t)) logits[std::size_t(t)] -= o.frequency_penalty * float(n) + o.presence_penalty;
}

void apply_min_tokens(std::span<float> logits, std::size_t num_output, const SamplingOptions& o) {
  if (num_output >= o.min_tokens) return;
  auto mask = [&](std::int32_t t) {
    if (t >= 0 && std::size_t(t) < logits.size()) logits[std::size_t(t)] = kNegInf;
  };
  if (!o.ignore_eos) mask(o.eos_token_id);
  for (auto t : o.stop_token_ids) mask(t);
}

double uniform01(std::uint64_t seed, std::uint64_t position) {
  std::uint64_t x = mix(mix(seed + 0x9e3779b97f4a7c15ull) ^ (position * 0xd1b54a32d192ed03ull));
  return double(x >> 11) * 0x1.0p-53;
}

std::vector<float> log_softmax(std::span<const float> logits) {
  float mx = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (float l : logits) sum += l == kNegInf ? 0.0 : std::exp(double(l) - mx);
  float lse = mx + float(std::log(sum));
  std::vector<float> out(logits.size());
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = logits[i] - lse;
  return out;
}

PositionLogprob position_logprob(std::span<const float> logits, std::int32_t token, std::int32_t num_top) {
  if (token < 0 || std::size_t(token) >= logits.size())
    throw std::invalid_argument("position_logprob: token " + std::to_string(token) + " outside the vocabulary");
  auto lp = log_softmax(logits);
  PositionLogprob r;
  r.logprob = lp[std::size_t(token)];
  r.rank = std::uint32_t(std::count_if(lp.begin(), lp.end(), [&](float v) { return v >= r.logprob; }));
  auto n = std::min<std::size_t>(std::size_t(std::max(num_top, 0)), lp.size());
  std::vector<std::int32_t> ids(lp.size());
  std::iota(ids.begin(), ids.end(), 0);
  // Only the N best need ordering: a full sort of a 129k vocabulary per prompt position would dominate.
  std::partial_sort(ids.begin(), ids.begin() + std::ptrdiff_t(n), ids.end(),
                    [&](auto a, auto b) { return lp[a] > lp[b] || (lp[a] == lp[b] && a < b); });
  for (std::size_t i = 0; i < n; ++i) r.top.push_back({ids[i], lp[ids[i]]});
  return r;
}

SampleResult sample(std::span<float> logits, const SamplingOptions& o, std::span<const std::int32_t> prompt,
                    std::span<const std::int32_t> output, std::uint64_t seed) {
  std::vector<float> raw;
  if (o.logprobs >= 0) raw.assign(logits.begin(), logits.end());
  apply_min_tokens(logits, output.size(), o);
  apply_penalties(logits, prompt, output, o);
  SampleResult r;
  if (o.temperature < 1e-5f) {
    r.token = argmax(logits);
  } else {
    for (auto& l : logits) l /= o.temperature;
    filter(logits, o);
    r.token = draw(logits, uniform01(seed, prompt.size() + output.size()));
  }
  if (o.logprobs >= 0) fill_logprobs(r, raw, o.logprobs);
  return r;
}

}  // namespace troupe
