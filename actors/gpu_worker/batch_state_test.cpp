#define BOOST_TEST_MODULE batch_state
#include <boost/test/unit_test.hpp>

#include "actors/gpu_worker/batch_state.hpp"
#include "actors/gpu_worker/sim_backend.hpp"

using namespace troupe;

static StepPlanMsg plan_new(std::uint64_t id, std::vector<int> toks, std::vector<std::uint32_t> blocks,
                            std::uint32_t sched, std::vector<std::uint64_t> finished = {}) {
  return StepPlanMsg::make([&](schema::StepPlan::Builder b) {
    auto nr = b.initNewRequests(1)[0];
    nr.setRequestId(id);
    auto t = nr.initTokenIds(toks.size());
    for (unsigned i = 0; i < toks.size(); ++i) t.set(i, toks[i]);
    auto bl = nr.initBlockIds(blocks.size());
    for (unsigned i = 0; i < blocks.size(); ++i) bl.set(i, blocks[i]);
    nr.setNumScheduledTokens(sched);
    auto f = b.initFinishedIds(finished.size());
    for (unsigned i = 0; i < finished.size(); ++i) f.set(i, finished[i]);
  });
}

BOOST_AUTO_TEST_CASE(follows_diffs_and_samples_when_the_prompt_is_complete) {
  BatchState bs(4);
  BOOST_CHECK_EQUAL(bs.apply(*plan_new(1, {5, 6, 7, 8, 9}, {0}, 4).view()), "");
  BOOST_REQUIRE_EQUAL(bs.scheduled().size(), 1u);
  BOOST_CHECK(!bs.scheduled()[0]->sample_now());  // chunk of 4 of 5 tokens
  bs.commit({});
  auto next = StepPlanMsg::make([](schema::StepPlan::Builder b) {
    auto s = b.initScheduled(1)[0];
    s.setRequestId(1);
    s.setNumScheduledTokens(1);
    s.initNewBlockIds(1).set(0, 3);
  });
  BOOST_CHECK_EQUAL(bs.apply(*next.view()), "");
  BOOST_CHECK(bs.scheduled()[0]->sample_now());
  bs.commit({{1, SampleResult{42, 0, {}}}});
  BOOST_CHECK_EQUAL(bs.size(), 1u);
}

BOOST_AUTO_TEST_CASE(rejects_double_owned_blocks_and_short_tables) {
  BatchState bs(4);
  BOOST_CHECK_EQUAL(bs.apply(*plan_new(1, {1, 2, 3}, {7}, 3).view()), "");
  bs.commit({});
  BOOST_CHECK_NE(bs.apply(*plan_new(2, {1, 2, 3}, {7}, 3).view()), "");
  BatchState short_table(4);
  BOOST_CHECK_NE(short_table.apply(*plan_new(3, {1, 2, 3, 4, 5}, {1}, 5).view()), "");
  // A forgotten request's blocks may be reused by the next.
  BatchState reuse(4);
  BOOST_CHECK_EQUAL(reuse.apply(*plan_new(1, {1}, {9}, 1).view()), "");
  reuse.commit({});
  BOOST_CHECK_EQUAL(reuse.apply(*plan_new(2, {1}, {9}, 1, {1}).view()), "");
}

BOOST_AUTO_TEST_CASE(sim_tokens_depend_on_position_not_batching) {
  auto a = SimBackend::token_at(17, 0, 10);
  BOOST_CHECK_EQUAL(a, SimBackend::token_at(17, 0, 10));
  BOOST_CHECK(a >= 32 && a < 127);  // printable text, never an EOS id
  BOOST_CHECK_CLOSE(SimBackend::step_us(100, 2, 10, 50, 3), 230.0, 1e-9);
}

BOOST_AUTO_TEST_CASE(sim_fake_logprobs_are_deterministic) {
  auto s = SimBackend::fake_logprobs('a', 3);
  BOOST_CHECK_EQUAL(s.token, 'a');
  BOOST_CHECK_EQUAL(s.logprob, 0.0f);
  BOOST_REQUIRE_EQUAL(s.top.size(), 3u);
  BOOST_CHECK_EQUAL(s.top[0].token, 'a');
  BOOST_CHECK_EQUAL(s.top[0].logprob, 0.0f);
  BOOST_CHECK(s.top[1].token != 'a' && s.top[2].token != 'a' && s.top[1].token != s.top[2].token);
  BOOST_CHECK_EQUAL(s.top[2].logprob, -2.0f);
  BOOST_CHECK(SimBackend::fake_logprobs('~', 0).top.empty());
  BOOST_CHECK_EQUAL(SimBackend::fake_logprobs('~', 20).top.size(), 20u);
}
