#define BOOST_TEST_MODULE cpu_backend
#include "actors/gpu_worker/batch_state.hpp"
#include "actors/gpu_worker/cpu_backend.hpp"

#include <boost/test/unit_test.hpp>

using namespace troupe;

namespace {
// "Once upon a time" and the first greedy tokens of stories260K (tests/data/stories260K).
const std::vector<std::int32_t> kPrompt = {1, 403, 407, 261, 378};
const std::vector<std::int32_t> kGreedy = {432, 383, 286, 261, 376, 298, 315, 421, 395, 317};

WorkerInitMsg init_msg(std::uint32_t block_size, const std::string& load_format = "auto") {
  return WorkerInitMsg::make([&](schema::WorkerInit::Builder b) {
    b.setBackend("cpu");
    b.setModel("");  // the embedded default
    b.setBlockSize(block_size);
    b.setNumBlocks(64);
    b.setSeed(3);
    b.setLoadFormat(load_format);
  });
}

struct NewReq {
  std::uint64_t id;
  std::vector<std::int32_t> tokens;
  std::vector<std::uint32_t> blocks;
  std::uint32_t sched;
  float temperature = 0;
  std::uint64_t seed = 0;
  std::uint32_t num_prompt = 0;
  std::int32_t logprobs = -1, prompt_logprobs = -1;
};

StepPlanMsg plan(const std::vector<NewReq>& news, const std::vector<std::pair<std::uint64_t, std::uint32_t>>& olds,
                 const std::vector<std::uint64_t>& finished = {}) {
  return StepPlanMsg::make([&](schema::StepPlan::Builder b) {
    auto n = b.initNewRequests(unsigned(news.size()));
    for (unsigned i = 0; i < news.size(); ++i) {
      n[i].setRequestId(news[i].id);
      auto t = n[i].initTokenIds(unsigned(news[i].tokens.size()));
      for (unsigned j = 0; j < news[i].tokens.size(); ++j) t.set(j, news[i].tokens[j]);
      auto bl = n[i].initBlockIds(unsigned(news[i].blocks.size()));
      for (unsigned j = 0; j < news[i].blocks.size(); ++j) bl.set(j, news[i].blocks[j]);
      n[i].setNumScheduledTokens(news[i].sched);
      n[i].setNumPromptTokens(news[i].num_prompt);
      auto s = n[i].initSampling();
      s.setTemperature(news[i].temperature);
      s.setHasSeed(news[i].seed != 0);
      s.setSeed(news[i].seed);
      s.setLogprobs(news[i].logprobs);
      s.setPromptLogprobs(news[i].prompt_logprobs);
    }
    auto o = b.initScheduled(unsigned(olds.size()));
    for (unsigned i = 0; i < olds.size(); ++i) {
      o[i].setRequestId(olds[i].first);
      o[i].setNumScheduledTokens(olds[i].second);
    }
    auto f = b.initFinishedIds(unsigned(finished.size()));
    for (unsigned i = 0; i < finished.size(); ++i) f.set(i, finished[i]);
  });
}

SampledTokens step_full(Backend& be, BatchState& bs, const StepPlanMsg& p) {
  BOOST_REQUIRE_EQUAL(bs.apply(*p.view()), "");
  auto sampled = be.execute(bs.scheduled());
  bs.commit(sampled);
  return sampled;
}

std::unordered_map<std::uint64_t, std::int32_t> step(Backend& be, BatchState& bs, const StepPlanMsg& p) {
  auto sampled = step_full(be, bs, p);
  std::unordered_map<std::uint64_t, std::int32_t> out;
  for (auto& [id, s] : sampled) out[id] = s.token;
  return out;
}
}  // namespace

BOOST_AUTO_TEST_CASE(make_backend_knows_cpu) { BOOST_CHECK(make_backend("cpu") != nullptr); }

BOOST_AUTO_TEST_CASE(chunked_prefill_mixed_with_decode_reproduces_greedy) {
  CpuBackend be;
  auto info = be.init(*init_msg(4).view());
  BOOST_TEST(info.device == "cpu");
  BatchState bs(4);
  // Request 1 prefills 3 of its 5 prompt tokens; request 2 (same prompt) prefills it all and samples.
  auto out = step(be, bs, plan({{1, kPrompt, {9, 2, 30, 31}, 3}, {2, kPrompt, {4, 5, 6, 7}, 5}}, {}));
  BOOST_TEST(out.count(1) == 0u);
  BOOST_TEST(out.at(2) == kGreedy[0]);
  std::vector<std::int32_t> got1, got2 = {out.at(2)};
  out = step(be, bs, plan({}, {{1, 2}, {2, 1}}));  // rest of 1's prompt with 2's first decode
  got1.push_back(out.at(1));
  got2.push_back(out.at(2));
  for (int i = 0; i < 8; ++i) {
    out = step(be, bs, plan({}, {{1, 1}, {2, 1}}));
    got1.push_back(out.at(1));
    got2.push_back(out.at(2));
  }
  std::vector<std::int32_t> want(kGreedy.begin(), kGreedy.begin() + 9), want2(kGreedy.begin(), kGreedy.begin() + 10);
  BOOST_TEST(got1 == want);
  BOOST_TEST(got2 == want2);
}

BOOST_AUTO_TEST_CASE(seeded_sampling_survives_preemption) {
  // Run 6 sampled tokens; then resume the request from its prompt + first 3 outputs (as the scheduler
  // does after preemption) and check the last 3 come out the same.
  std::vector<std::int32_t> full;
  {
    CpuBackend be;
    be.init(*init_msg(8).view());
    BatchState bs(8);
    full.push_back(step(be, bs, plan({{1, kPrompt, {0, 1}, 5, 1.0f, 1234}}, {})).at(1));
    for (int i = 0; i < 5; ++i) full.push_back(step(be, bs, plan({}, {{1, 1}})).at(1));
  }
  CpuBackend be;
  be.init(*init_msg(8).view());
  BatchState bs(8);
  auto resumed = kPrompt;
  resumed.insert(resumed.end(), full.begin(), full.begin() + 3);
  std::vector<std::int32_t> tail = {step(be, bs, plan({{7, resumed, {5, 6}, 8, 1.0f, 1234, 5}}, {})).at(7)};
  for (int i = 0; i < 2; ++i) tail.push_back(step(be, bs, plan({}, {{7, 1}})).at(7));
  BOOST_TEST(tail == std::vector<std::int32_t>(full.begin() + 3, full.end()));
}

BOOST_AUTO_TEST_CASE(dummy_weights_load_without_a_checkpoint) {
  CpuBackend be;
  BOOST_TEST(be.init(*init_msg(4, "dummy").view()).num_blocks == 64u);
  BatchState bs(4);
  auto out = step(be, bs, plan({{1, kPrompt, {0, 1}, 5}}, {}));
  BOOST_TEST((out.at(1) >= 0 && out.at(1) < 512));
}

// prompt_logprobs against the model's own sampled logprobs: the greedy continuation's logprobs (computed
// from decode steps) must equal the prompt logprobs of a second request whose prompt is prompt + output
// (computed from all rows of prefill chunks), and greedy tokens rank first.
BOOST_AUTO_TEST_CASE(prompt_logprobs_equal_the_logprobs_of_the_same_tokens_generated) {
  CpuBackend be;
  be.init(*init_msg(4).view());
  BatchState bs(4);
  std::vector<SampleResult> gen = {step_full(be, bs, plan({{1, kPrompt, {0, 1, 2, 3}, 5, 0, 0, 0, 2}}, {})).at(1)};
  for (int i = 0; i < 6; ++i) gen.push_back(step_full(be, bs, plan({}, {{1, 1}})).at(1));
  auto long_prompt = kPrompt;
  for (auto& g : gen) long_prompt.push_back(g.token);  // 12 tokens
  // Prefilled in chunks of 5, 4 and 3 tokens (block size 4: chunk edges cross blocks).
  std::vector<std::uint32_t> blocks = {10, 11, 12, 13};
  auto r = step_full(be, bs, plan({{2, long_prompt, blocks, 5, 0, 0, 0, -1, 3}}, {}));
  BOOST_TEST(r.count(2) == 0u);
  BOOST_TEST(step_full(be, bs, plan({}, {{2, 4}})).count(2) == 0u);
  auto last = step_full(be, bs, plan({}, {{2, 3}})).at(2);
  const auto& pl = last.prompt_logprobs;
  BOOST_REQUIRE_EQUAL(pl.size(), long_prompt.size() - 1);
  for (std::size_t i = 0; i < gen.size(); ++i) {
    const auto& p = pl[kPrompt.size() - 1 + i];  // scores long_prompt[kPrompt.size() + i] == gen[i].token
    BOOST_TEST(p.logprob == gen[i].logprob, boost::test_tools::tolerance(1e-5f));
    BOOST_TEST(p.rank == 1u);  // greedy picked the most likely token
    BOOST_REQUIRE_EQUAL(p.top.size(), 3u);
    BOOST_TEST(p.top[0].token == gen[i].token);
    BOOST_TEST(p.top[1].token == gen[i].top[1].token);
    BOOST_TEST(p.top[1].logprob == gen[i].top[1].logprob, boost::test_tools::tolerance(1e-5f));
  }
  for (const auto& p : pl) {
    BOOST_TEST(p.logprob <= 0.0f);
    BOOST_TEST(p.rank >= 1u);
    BOOST_TEST((p.rank > 1u || p.logprob == p.top[0].logprob));
  }
  // The same request prefilled whole gives the same values (the chunking does not matter).
  BatchState bs2(4);
  auto whole = step_full(be, bs2, plan({{3, long_prompt, {20, 21, 22, 23}, 12, 0, 0, 0, -1, 3}}, {})).at(3);
  BOOST_REQUIRE_EQUAL(whole.prompt_logprobs.size(), pl.size());
  for (std::size_t i = 0; i < pl.size(); ++i) {
    BOOST_TEST(whole.prompt_logprobs[i].logprob == pl[i].logprob, boost::test_tools::tolerance(1e-5f));
    BOOST_TEST(whole.prompt_logprobs[i].rank == pl[i].rank);
  }
  BOOST_TEST(whole.token == last.token);
}

BOOST_AUTO_TEST_CASE(prompt_logprobs_of_a_one_token_prompt_are_empty) {
  CpuBackend be;
  be.init(*init_msg(4).view());
  BatchState bs(4);
  auto r = step_full(be, bs, plan({{1, {1}, {0}, 1, 0, 0, 0, -1, 2}}, {})).at(1);
  BOOST_TEST(r.prompt_logprobs.empty());
  BOOST_TEST(r.top.empty());  // logprobs were not asked
}
