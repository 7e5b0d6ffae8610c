#define BOOST_TEST_MODULE scheduler_core
#include <boost/test/unit_test.hpp>

#include "actors/kv_cache/kv_cache_manager.hpp"
#include "actors/scheduler/scheduler_core.hpp"

#include <map>
#include <set>

using namespace troupe;

namespace {

SubmitMsg submit(std::uint64_t id, std::uint32_t prompt_len, std::uint32_t max_tokens, std::int32_t eos = -1,
                 std::vector<std::int32_t> stop_ids = {}, std::uint32_t min_tokens = 0, bool ignore_eos = false) {
  return SubmitMsg::make([&](schema::SubmitRequest::Builder b) {
    b.setRequestId(id);
    auto t = b.initPromptTokens(prompt_len);
    for (unsigned i = 0; i < prompt_len; ++i) t.set(i, 100 + i);
    auto s = b.initSampling();
    s.setMaxTokens(max_tokens);
    s.setMinTokens(min_tokens);
    s.setIgnoreEos(ignore_eos);
    auto st = s.initStopTokenIds(stop_ids.size());
    for (unsigned i = 0; i < stop_ids.size(); ++i) st.set(i, stop_ids[i]);
    b.setEosTokenId(eos);
  });
}

SubmitMsg submit_prompt_logprobs(std::uint64_t id, std::uint32_t prompt_len, std::uint32_t max_tokens, std::int32_t n) {
  return SubmitMsg::make([&](schema::SubmitRequest::Builder b) {
    b.setRequestId(id);
    auto t = b.initPromptTokens(prompt_len);
    for (unsigned i = 0; i < prompt_len; ++i) t.set(i, 100 + i);
    b.initSampling().setMaxTokens(max_tokens);
    b.getSampling().setPromptLogprobs(n);
  });
}

// Plays the kv manager (a real KvCacheManager) and a worker that samples `next_token(id, pos)`.
struct Harness {
  explicit Harness(SchedulerLimits l) : core(l), book(l.num_blocks, l.block_size, l.enable_prefix_caching) {}
  SchedulerCore core;
  KvCacheManager book;
  std::map<std::uint64_t, std::uint32_t> computed;  // the worker's view
  std::map<std::uint64_t, std::uint32_t> total;
  std::map<std::uint64_t, std::uint32_t> cached;    // numComputedTokens of the last NewRequest
  std::function<std::int32_t(std::uint64_t, std::uint32_t)> next_token = [](auto, auto pos) { return 7; };
  std::vector<TokenEventOut> events;
  bool logprobs = false;  // the worker reports logprob -1 for each token, top 1: {token + 1: -0.5}
  bool prompt_logprobs = false;  // with a request's first token, 2 prompt entries (logprob -2, rank 3)
  std::set<std::uint64_t> first_output;

  // Returns {id -> tokens scheduled} of the step.
  std::map<std::uint64_t, std::uint32_t> step() {
    auto d = core.schedule();
    auto reply = book.exchange(core.kv_request(d));
    core.apply_kv_reply(d, reply);
    auto plan = core.build_plan(d);
    std::map<std::uint64_t, std::uint32_t> sched;
    auto pv = plan.view();
    for (auto id : pv->getFinishedIds()) computed.erase(id), total.erase(id);
    for (auto n : pv->getNewRequests()) {
      sched[n.getRequestId()] = n.getNumScheduledTokens();
      computed[n.getRequestId()] = n.getNumComputedTokens();
      cached[n.getRequestId()] = n.getNumComputedTokens();
      total[n.getRequestId()] = n.getTokenIds().size();
    }
    for (auto s : pv->getScheduled()) sched[s.getRequestId()] = s.getNumScheduledTokens();
    auto result = StepResultMsg::make([&](schema::StepResult::Builder b) {
      std::vector<std::pair<std::uint64_t, std::int32_t>> outs;
      for (auto [id, n] : sched) {
        computed[id] += n;
        if (computed[id] == total[id]) outs.push_back({id, next_token(id, total[id]++)});
      }
      auto o = b.initOutputs(outs.size());
      for (unsigned i = 0; i < outs.size(); ++i) {
        o[i].setRequestId(outs[i].first);
        o[i].initTokens(1).set(0, outs[i].second);
        if (first_output.insert(outs[i].first).second && prompt_logprobs) {  // 2 entries, rank 3
          auto pl = o[i].initPromptLogprobs(2);
          for (unsigned k = 0; k < 2; ++k) pl[k].setLogprob(-2.0f), pl[k].setRank(3);
        }
        if (!logprobs) continue;
        auto lp = o[i].initLogprobs(1)[0];
        lp.setLogprob(-1.0f);
        lp.initTop(1)[0].setToken(outs[i].second + 1);
        lp.getTop()[0].setLogprob(-0.5f);
      }
    });
    auto ev = core.update_from_result(result);
    events.insert(events.end(), ev.begin(), ev.end());
    return sched;
  }
};

SchedulerLimits limits(std::uint32_t seqs, std::uint32_t tokens, std::uint32_t blocks, std::uint32_t bs = 16) {
  SchedulerLimits l;
  l.max_num_seqs = seqs;
  l.max_num_batched_tokens = tokens;
  l.num_blocks = blocks;
  l.block_size = bs;
  l.max_model_len = 4096;
  return l;
}

using Plan = std::map<std::uint64_t, std::uint32_t>;

}  // namespace

BOOST_AUTO_TEST_CASE(token_budget_chunks_prefill_and_decodes_go_first) {
  Harness h(limits(8, 150, 100));
  for (std::uint64_t id : {1, 2, 3}) BOOST_REQUIRE(!h.core.add(submit(id, 100, 3), 0));
  // step: which requests run and how many tokens each.
  BOOST_CHECK((h.step() == Plan{{1, 100}, {2, 50}}));
  BOOST_CHECK((h.step() == Plan{{1, 1}, {2, 50}, {3, 99}}));
  BOOST_CHECK((h.step() == Plan{{1, 1}, {2, 1}, {3, 1}}));
  BOOST_CHECK((h.step() == Plan{{2, 1}, {3, 1}}));  // 1 finished: 3 tokens
  BOOST_CHECK((h.step() == Plan{{3, 1}}));
  BOOST_CHECK(!h.core.has_work());
  BOOST_CHECK(h.core.has_pending_frees());
  BOOST_CHECK((h.step() == Plan{}));                 // a frees-only exchange
  BOOST_CHECK(!h.core.has_work());
  BOOST_CHECK_EQUAL(h.book.num_free(), 100u);
}

BOOST_AUTO_TEST_CASE(sequence_budget_caps_the_batch) {
  Harness h(limits(2, 1000, 100));
  for (std::uint64_t id : {1, 2, 3}) BOOST_REQUIRE(!h.core.add(submit(id, 10, 2), 0));
  BOOST_CHECK((h.step() == Plan{{1, 10}, {2, 10}}));
  BOOST_CHECK((h.step() == Plan{{1, 1}, {2, 1}}));
  BOOST_CHECK((h.step() == Plan{{3, 10}}));
}

BOOST_AUTO_TEST_CASE(newest_running_request_is_preempted_and_resumes_by_recompute) {
  // 4-token blocks, 5 blocks: two requests of 8 prompt tokens (2 blocks each) growing to 16 tokens.
  Harness h(limits(8, 100, 5, 4));
  h.next_token = [](std::uint64_t id, std::uint32_t pos) { return std::int32_t(id * 1000 + pos); };
  BOOST_REQUIRE(!h.core.add(submit(1, 8, 8), 0));
  BOOST_REQUIRE(!h.core.add(submit(2, 8, 8), 0));
  BOOST_CHECK((h.step() == Plan{{1, 8}, {2, 8}}));  // 4 blocks used, each got a token -> 9 tokens
  // Both now need a 3rd block; 1 takes the last one, 2 (the newest) is preempted.
  BOOST_CHECK((h.step() == Plan{{1, 1}}));
  BOOST_CHECK_EQUAL(h.core.counters().preemptions, 1u);
  BOOST_CHECK_EQUAL(h.core.num_waiting(), 1u);
  std::uint32_t steps = 0;
  while (h.core.has_work() && steps++ < 100) h.step();
  h.step();  // flush the last frees
  BOOST_CHECK(!h.core.has_work());
  BOOST_CHECK_EQUAL(h.book.num_free(), 5u);
  // Every request got exactly max_tokens tokens, contiguous, and the resumed one continued in order.
  std::map<std::uint64_t, std::vector<std::int32_t>> out;
  for (auto& e : h.events) {
    BOOST_CHECK_EQUAL(e.first_index, out[e.id].size());
    out[e.id].insert(out[e.id].end(), e.tokens.begin(), e.tokens.end());
  }
  for (std::uint64_t id : {1, 2}) {
    BOOST_REQUIRE_EQUAL(out[id].size(), 8u);
    for (std::uint32_t i = 0; i < 8; ++i) BOOST_CHECK_EQUAL(out[id][i], std::int32_t(id * 1000 + 8 + i));
  }
}

BOOST_AUTO_TEST_CASE(admission_rejects_what_can_never_run) {
  auto l = limits(4, 100, 10);
  l.max_model_len = 64;
  l.max_waiting = 2;
  SchedulerCore core(l);
  auto too_long = core.add(submit(1, 60, 10), 0);
  BOOST_REQUIRE(too_long);
  BOOST_CHECK_EQUAL(too_long->status, 400);
  BOOST_CHECK(too_long->message.find("maximum context length is 64") != std::string::npos);
  BOOST_CHECK(!core.add(submit(2, 10, 10), 0));
  BOOST_CHECK(!core.add(submit(3, 10, 10), 0));
  auto full = core.add(submit(4, 10, 10), 0);
  BOOST_REQUIRE(full);
  BOOST_CHECK_EQUAL(full->status, 503);
  BOOST_CHECK_EQUAL(core.add(submit(2, 10, 10), 0)->status, 400);  // duplicate id
}

BOOST_AUTO_TEST_CASE(stop_rules_eos_stop_ids_min_tokens_ignore_eos) {
  Harness h(limits(8, 1000, 100));
  h.next_token = [](std::uint64_t, std::uint32_t pos) { return std::int32_t(pos % 2 ? 2 : 9); };
  BOOST_REQUIRE(!h.core.add(submit(1, 4, 10, /*eos*/ 2), 0));                      // stops at first 2
  BOOST_REQUIRE(!h.core.add(submit(2, 4, 10, 2, {}, /*min*/ 3), 0));               // 2 is ignored before 3 tokens
  BOOST_REQUIRE(!h.core.add(submit(3, 4, 5, 2, {}, 0, /*ignore_eos*/ true), 0));   // runs to length
  BOOST_REQUIRE(!h.core.add(submit(4, 4, 10, -1, {9}), 0));                        // stop token 9
  for (int i = 0; i < 20 && h.core.has_work(); ++i) h.step();
  std::map<std::uint64_t, TokenEventOut> last;
  std::map<std::uint64_t, std::size_t> n;
  for (auto& e : h.events) last[e.id] = e, n[e.id] += e.tokens.size();
  BOOST_CHECK(last[1].finish == schema::FinishReason::STOP);
  BOOST_CHECK_EQUAL(n[1], 2u);  // positions 4 (9), 5 (2)
  BOOST_CHECK(last[2].finish == schema::FinishReason::STOP);
  BOOST_CHECK_EQUAL(n[2], 4u);
  BOOST_CHECK(last[3].finish == schema::FinishReason::LENGTH);
  BOOST_CHECK_EQUAL(n[3], 5u);
  BOOST_CHECK(last[4].finish == schema::FinishReason::STOP);
  BOOST_CHECK_EQUAL(last[4].stop_token, 9);
  BOOST_CHECK_EQUAL(n[4], 1u);
}

BOOST_AUTO_TEST_CASE(abort_frees_blocks_at_the_next_exchange) {
  Harness h(limits(8, 1000, 10));
  BOOST_REQUIRE(!h.core.add(submit(1, 40, 100), 0));
  h.step();
  BOOST_CHECK_EQUAL(h.book.num_free(), 7u);
  auto ev = h.core.abort(1, "client gone");
  BOOST_REQUIRE(ev);
  BOOST_CHECK(ev->finish == schema::FinishReason::ABORT);
  BOOST_CHECK(!h.core.abort(1, "again"));
  BOOST_CHECK_EQUAL(h.core.mirror_free_blocks(), 10u);
  BOOST_REQUIRE(!h.core.add(submit(2, 4, 1), 0));
  h.step();  // the exchange frees 1's blocks before allocating 2's one block
  BOOST_CHECK_EQUAL(h.book.num_free(), 9u);
  h.step();  // 2 finished (max_tokens 1): its block returns at the next exchange
  BOOST_CHECK_EQUAL(h.book.num_free(), 10u);
}

BOOST_AUTO_TEST_CASE(prefix_cache_hits_skip_exactly_the_cached_tokens) {
  auto l = limits(8, 100, 20, 4);
  l.enable_prefix_caching = true;
  Harness h(l);
  BOOST_REQUIRE(!h.core.add(submit(1, 10, 2), 0));
  BOOST_CHECK((h.step() == Plan{{1, 10}}));
  BOOST_CHECK((h.step() == Plan{{1, 1}}));  // 1 finishes; its 2 full prompt blocks stay cached
  BOOST_REQUIRE(!h.core.add(submit(2, 10, 1), 0));
  BOOST_REQUIRE(!h.core.add(submit(3, 8, 1), 0));
  // 2 finds 8 of its 10 tokens; 3 (8 tokens, the same prefix) finds 4: its last token is always computed.
  BOOST_CHECK((h.step() == Plan{{2, 2}, {3, 4}}));
  BOOST_CHECK_EQUAL(h.cached[2], 8u);
  BOOST_CHECK_EQUAL(h.cached[3], 4u);
  BOOST_CHECK_EQUAL(h.core.counters().prefix_queries, 28u);
  BOOST_CHECK_EQUAL(h.core.counters().prefix_hits, 12u);
  h.step();
  BOOST_CHECK(!h.core.has_work());
  BOOST_CHECK_EQUAL(h.book.check(), "");
  BOOST_CHECK_EQUAL(h.book.num_free(), 20u);
}

BOOST_AUTO_TEST_CASE(preemption_with_prefix_caching_resumes_from_cached_blocks_with_the_same_outputs) {
  auto run = [](bool caching) {
    auto l = limits(8, 100, 5, 4);
    l.enable_prefix_caching = caching;
    Harness h(l);
    h.next_token = [](std::uint64_t id, std::uint32_t pos) { return std::int32_t(id * 1000 + pos); };
    BOOST_REQUIRE(!h.core.add(submit(1, 8, 8), 0));
    BOOST_REQUIRE(!h.core.add(submit(2, 8, 8), 0));
    for (int i = 0; i < 100 && (h.core.has_work() || h.core.has_pending_frees()); ++i) h.step();
    BOOST_CHECK_EQUAL(h.book.check(), "");
    BOOST_CHECK_EQUAL(h.book.num_free(), 5u);
    std::map<std::uint64_t, std::vector<std::int32_t>> out;
    for (auto& e : h.events) out[e.id].insert(out[e.id].end(), e.tokens.begin(), e.tokens.end());
    return std::make_tuple(out, h.core.counters().preemptions, h.core.counters().prefix_hits);
  };
  auto [plain, pre_plain, hits_plain] = run(false);
  auto [cached, pre_cached, hits_cached] = run(true);
  BOOST_CHECK((plain == cached));
  BOOST_CHECK_GT(pre_cached, 0u);
  BOOST_CHECK_GT(hits_cached, 0u);  // the preempted request found its own blocks again
  BOOST_CHECK_EQUAL(hits_plain, 0u);
}

BOOST_AUTO_TEST_CASE(counters_and_latency_histograms) {
  Harness h(limits(8, 1000, 100));
  BOOST_REQUIRE(!h.core.add(submit(1, 10, 3, /*eos*/ 7), 0));  // the harness samples 7: stops at once
  BOOST_REQUIRE(!h.core.add(submit(2, 20, 3), 0));
  for (int i = 0; i < 10 && h.core.has_work(); ++i) h.step();
  auto& c = h.core.counters();
  BOOST_CHECK_EQUAL(c.finished_stop, 1u);
  BOOST_CHECK_EQUAL(c.finished_length, 1u);
  BOOST_CHECK_EQUAL(c.prompt_tokens, 30u);
  BOOST_CHECK_EQUAL(c.generation_tokens, 4u);
  auto& hist = h.core.histograms();
  BOOST_CHECK_EQUAL(hist.ttft.count(), 2u);
  BOOST_CHECK_EQUAL(hist.itl.count(), 2u);  // request 2's 2nd and 3rd tokens
  BOOST_CHECK_EQUAL(hist.e2e.count(), 2u);
  BOOST_CHECK_EQUAL(hist.queue.count(), 2u);
}

BOOST_AUTO_TEST_CASE(logprobs_travel_with_their_tokens) {
  Harness h(limits(8, 1000, 100));
  h.logprobs = true;
  BOOST_REQUIRE(!h.core.add(submit(1, 4, 3), 0));
  for (int i = 0; i < 10 && h.core.has_work(); ++i) h.step();
  std::size_t n = 0;
  for (auto& e : h.events) {
    BOOST_REQUIRE_EQUAL(e.logprobs.size(), e.tokens.size());
    for (auto& lp : e.logprobs) {
      BOOST_CHECK_EQUAL(lp.logprob, -1.0f);
      BOOST_REQUIRE_EQUAL(lp.top.size(), 1u);
      BOOST_CHECK_EQUAL(lp.top[0].first, 8);
      BOOST_CHECK_EQUAL(lp.top[0].second, -0.5f);
    }
    n += e.tokens.size();
  }
  BOOST_CHECK_EQUAL(n, 3u);
}

// vLLM: a request that asks for prompt logprobs must compute every prompt position, so it takes no
// prefix-cache hits (its blocks still enter the cache); its prompt logprobs reach the first event only.
BOOST_AUTO_TEST_CASE(prompt_logprobs_skip_prefix_cache_hits_and_travel_once) {
  auto l = limits(8, 100, 20, 4);
  l.enable_prefix_caching = true;
  Harness h(l);
  h.prompt_logprobs = true;
  BOOST_REQUIRE(!h.core.add(submit(1, 10, 2), 0));
  h.step();
  h.step();  // 1 finishes: its 2 full prompt blocks are cached
  BOOST_REQUIRE(!h.core.add(submit_prompt_logprobs(2, 10, 3, 1), 0));
  BOOST_CHECK((h.step() == Plan{{2, 10}}));  // no hits: all 10 prompt tokens computed
  BOOST_CHECK_EQUAL(h.cached[2], 0u);
  BOOST_CHECK_EQUAL(h.core.counters().prefix_hits, 0u);
  BOOST_REQUIRE(!h.core.add(submit(3, 10, 1), 0));
  while (h.core.has_work()) h.step();
  BOOST_CHECK_EQUAL(h.cached[3], 8u);  // a plain request still hits
  std::size_t with = 0;
  for (auto& e : h.events) {
    if (e.prompt_logprobs.empty()) continue;
    ++with;
    BOOST_CHECK_EQUAL(e.first_index, 0u);
    BOOST_REQUIRE_EQUAL(e.prompt_logprobs.size(), 2u);
    BOOST_CHECK_EQUAL(e.prompt_logprobs[1].rank, 3u);
    BOOST_CHECK_EQUAL(e.prompt_logprobs[1].logprob, -2.0f);
  }
  BOOST_CHECK_EQUAL(with, 3u);  // each request's first event (the harness sends them to every request)
  BOOST_CHECK_EQUAL(h.book.check(), "");
}
