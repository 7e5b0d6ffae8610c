#define BOOST_TEST_MODULE sampling
#include "model/sampling/sampling.hpp"

#include <boost/test/unit_test.hpp>

#include <cmath>
#include <map>

using namespace troupe;
namespace tt = boost::test_tools;

namespace {
using Ids = std::vector<std::int32_t>;
SampleResult run(std::vector<float> logits, const SamplingOptions& o, const Ids& prompt = {}, const Ids& out = {},
                 std::uint64_t seed = 1) {
  return sample(logits, o, prompt, out, seed);
}
SamplingOptions greedy() {
  SamplingOptions o;
  o.temperature = 0;
  return o;
}
// How often each token is drawn over `n` positions (the position keys the draw).
std::map<std::int32_t, int> histogram(const std::vector<float>& logits, const SamplingOptions& o, int n) {
  std::map<std::int32_t, int> h;
  Ids prompt;
  for (int i = 0; i < n; ++i) {
    ++h[run(logits, o, prompt).token];
    prompt.push_back(0);
  }
  return h;
}
}  // namespace

BOOST_AUTO_TEST_CASE(greedy_takes_the_first_maximum) {
  BOOST_TEST(run({1, 3, 2}, greedy()).token == 1);
  BOOST_TEST(run({5, 1, 5}, greedy()).token == 0);
}

BOOST_AUTO_TEST_CASE(repetition_penalty_over_prompt_and_output) {
  // vLLM: positive logits divided, negative multiplied, for tokens seen in prompt or output.
  std::vector<float> l = {2.0f, -1.0f, 1.0f, 0.5f};
  SamplingOptions o;
  o.repetition_penalty = 2.0f;
  apply_penalties(l, Ids{0}, Ids{1}, o);
  BOOST_TEST(l == std::vector<float>({1.0f, -2.0f, 1.0f, 0.5f}));
  BOOST_TEST(run({2.0f, 0.0f, 1.5f}, [] { auto g = greedy(); g.repetition_penalty = 2.0f; return g; }(), {0}).token == 2);
}

BOOST_AUTO_TEST_CASE(presence_and_frequency_over_output_only) {
  std::vector<float> l = {1.0f, 1.0f, 1.0f};
  SamplingOptions o;
  o.presence_penalty = 0.5f;
  o.frequency_penalty = 0.25f;
  apply_penalties(l, Ids{2, 2}, Ids{0, 0, 1}, o);  // token 2 only in the prompt: untouched
  BOOST_TEST(l[0] == 1.0f - 0.5f - 2 * 0.25f);
  BOOST_TEST(l[1] == 1.0f - 0.5f - 0.25f);
  BOOST_TEST(l[2] == 1.0f);
}

BOOST_AUTO_TEST_CASE(min_tokens_masks_eos_and_stop_ids) {
  SamplingOptions o = greedy();
  o.min_tokens = 2;
  o.eos_token_id = 0;
  o.stop_token_ids = {1};
  std::vector<float> l = {9, 8, 1};
  BOOST_TEST(run(l, o, {}, {5}).token == 2);      // one output so far: EOS and stop id masked
  BOOST_TEST(run(l, o, {}, {5, 5}).token == 0);   // min_tokens reached
  o.ignore_eos = true;                            // ignore_eos: EOS is not a stop, so not masked
  BOOST_TEST(run(l, o, {}, {5}).token == 0);
}

BOOST_AUTO_TEST_CASE(logprobs_of_raw_logits) {
  SamplingOptions o = greedy();
  o.logprobs = 2;
  o.repetition_penalty = 100;  // changes the pick, not the reported logprobs
  auto r = run({std::log(0.5f), std::log(0.3f), std::log(0.2f)}, o, {0});
  BOOST_TEST(r.token == 1);
  BOOST_TEST(r.logprob == std::log(0.3f), tt::tolerance(1e-5f));
  BOOST_REQUIRE(r.top.size() == 2u);
  BOOST_TEST(r.top[0].token == 0);
  BOOST_TEST(r.top[0].logprob == std::log(0.5f), tt::tolerance(1e-5f));
  BOOST_TEST(r.top[1].token == 1);
}

BOOST_AUTO_TEST_CASE(top_k_top_p_min_p_filter) {
  // probabilities 0.5, 0.25, 0.15, 0.1
  std::vector<float> l = {std::log(0.5f), std::log(0.25f), std::log(0.15f), std::log(0.1f)};
  SamplingOptions k;
  k.top_k = 2;
  auto h = histogram(l, k, 400);
  BOOST_TEST(h.count(2) == 0u);
  BOOST_TEST(h.count(3) == 0u);
  BOOST_TEST(h[0] > h[1]);
  SamplingOptions p;
  p.top_p = 0.7f;  // 0.5 < 0.7, 0.5 + 0.25 >= 0.7: tokens 0 and 1 stay
  h = histogram(l, p, 400);
  BOOST_TEST(h.count(2) + h.count(3) == 0u);
  BOOST_TEST(h.count(1) == 1u);
  SamplingOptions m;
  m.min_p = 0.4f;  // cut at 0.4 * 0.5 = 0.2: tokens 0 and 1 stay
  h = histogram(l, m, 400);
  BOOST_TEST(h.count(2) + h.count(3) == 0u);
  SamplingOptions all;  // temperature 1, no filters: every token appears, about in proportion
  h = histogram(l, all, 4000);
  BOOST_TEST(h[0] / 4000.0 == 0.5, tt::tolerance(0.1));
  BOOST_TEST(h[3] / 4000.0 == 0.1, tt::tolerance(0.3));
}

BOOST_AUTO_TEST_CASE(low_temperature_sharpens) {
  std::vector<float> l = {1.0f, 0.0f};
  SamplingOptions cold;
  cold.temperature = 0.05f;  // exp(20): token 1 practically never
  BOOST_TEST(histogram(l, cold, 300).count(1) == 0u);
}

BOOST_AUTO_TEST_CASE(seeded_draws_are_reproducible_by_position) {
  std::vector<float> l(50, 0.0f);
  SamplingOptions o;
  Ids prompt = {1, 2, 3};
  auto a = run(l, o, prompt, {7}, 42).token, b = run(l, o, prompt, {7}, 42).token;
  BOOST_TEST(a == b);
  // Resumed after preemption: the same seed and position give the same token.
  BOOST_TEST(run(l, o, {1, 2, 3, 7}, {}, 42).token == a);
  int differ = 0;
  for (std::uint64_t s = 0; s < 20; ++s) differ += run(l, o, prompt, {7}, s).token != a;
  BOOST_TEST(differ > 10);
  BOOST_TEST(uniform01(1, 2) == uniform01(1, 2));
  BOOST_TEST(uniform01(1, 2) != uniform01(1, 3));
}

// vLLM's rank: the number of tokens whose logprob is >= the token's own (ties count against it).
BOOST_AUTO_TEST_CASE(position_logprob_rank_and_top) {
  std::vector<float> l = {1.0f, 3.0f, 2.0f, 3.0f, 0.0f};
  auto lp = log_softmax(l);
  auto p = position_logprob(l, 2, 3);
  BOOST_TEST(p.logprob == lp[2]);
  BOOST_TEST(p.rank == 3u);  // tokens 1 and 3 are more likely
  BOOST_REQUIRE_EQUAL(p.top.size(), 3u);
  BOOST_TEST(p.top[0].token == 1);  // a tie goes to the lower id
  BOOST_TEST(p.top[1].token == 3);
  BOOST_TEST(p.top[2].token == 2);
  BOOST_TEST(p.top[2].logprob == lp[2]);
  BOOST_TEST(position_logprob(l, 1, 0).rank == 2u);  // tied with token 3
  BOOST_TEST(position_logprob(l, 4, 0).rank == 5u);
  BOOST_TEST(position_logprob(l, 4, 0).top.empty());
  BOOST_TEST(position_logprob(l, 0, 9).top.size() == 5u);  // N beyond the vocabulary: all of it
  BOOST_CHECK_THROW(position_logprob(l, 5, 1), std::invalid_argument);
  double sum = 0;
  for (float v : lp) sum += std::exp(double(v));
  BOOST_TEST(sum == 1.0, boost::test_tools::tolerance(1e-6));
}
