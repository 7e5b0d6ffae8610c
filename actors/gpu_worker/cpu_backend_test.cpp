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

std::unordered_map<std::uint64_t, std::int32_t> step(Backend& be, BatchState& bs, const StepPlanMsg& p) {
  BOOST_REQUIRE_EQUAL(bs.apply(*p.view()), "");
  auto sampled = be.execute(bs.scheduled());
  bs.commit(sampled);
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
