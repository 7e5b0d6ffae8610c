#define BOOST_TEST_MODULE engine_sim
#include <boost/test/unit_test.hpp>

#include "actors/gpu_worker/sim_backend.hpp"
#include "actors/kv_cache/kv_cache_manager.hpp"
#include "actors/scheduler/block_hash.hpp"
#include "actors/scheduler/scheduler_core.hpp"
#include "tests/sim_harness.hpp"
#include "tests/support/http_client.hpp"

#include <map>
#include <random>
#include <set>

// Engine simulations: SchedulerCore + KvCacheManager driven step by step, with a worker that keeps real
// (tiny) KV content, so a wrong cache hit or a lost block changes the outputs. Then the same through the
// whole actor system on sim workers, with prefix caching on and /metrics scraped.

using namespace troupe;
using namespace troupe::testing;

namespace {

// The "model": the KV of position p is a hash of the KV of p-1 and token p, so every value depends on the
// whole prefix; the next token is read off the last position's KV. Greedy and exact.
std::uint64_t kv_of(std::uint64_t prev, std::int32_t tok) { return mix64(prev * 31 + std::uint64_t(tok) + 1); }
std::int32_t sample(std::uint64_t kv) { return std::int32_t(kv % 1000); }

std::vector<std::int32_t> reference_output(const std::vector<std::int32_t>& prompt, std::uint32_t n) {
  std::vector<std::int32_t> seq = prompt, out;
  std::uint64_t kv = 0;
  for (std::size_t p = 0; out.size() < n; ++p) {
    kv = kv_of(kv, seq[p]);
    if (p + 1 == seq.size()) seq.push_back(sample(kv)), out.push_back(seq.back());
  }
  return out;
}

struct Workload {
  struct Req {
    std::vector<std::int32_t> prompt;
    std::uint32_t max_tokens;
    std::uint32_t arrive_step;
    std::int64_t abort_step;  // -1: never
  };
  std::vector<Req> reqs;  // request id = index + 1
};

// Prompts share a few long prefixes (system prompts, multi-turn histories) so the prefix cache has work.
Workload make_workload(std::uint32_t n, std::uint32_t seed, double abort_p) {
  std::mt19937 rng(seed);
  std::vector<std::vector<std::int32_t>> prefixes(6);
  for (auto& p : prefixes) {
    p.resize(16 + rng() % 120);
    for (auto& t : p) t = std::int32_t(rng() % 1000);
  }
  Workload w;
  for (std::uint32_t i = 0; i < n; ++i) {
    Workload::Req r;
    if (rng() % 3) r.prompt = prefixes[rng() % prefixes.size()];
    std::uint32_t tail = 1 + rng() % 200;
    for (std::uint32_t k = 0; k < tail; ++k) r.prompt.push_back(std::int32_t(rng() % 1000));
    r.max_tokens = 1 + rng() % 80;
    r.arrive_step = i / 8;
    r.abort_step = (rng() % 1000) < abort_p * 1000 ? std::int64_t(r.arrive_step + rng() % 40) : -1;
    w.reqs.push_back(std::move(r));
  }
  return w;
}

SubmitMsg submit_of(std::uint64_t id, const Workload::Req& r) {
  return SubmitMsg::make([&](schema::SubmitRequest::Builder b) {
    b.setRequestId(id);
    auto t = b.initPromptTokens(static_cast<unsigned>(r.prompt.size()));
    for (unsigned i = 0; i < r.prompt.size(); ++i) t.set(i, r.prompt[i]);
    b.initSampling().setMaxTokens(r.max_tokens);
  });
}

// The worker side: follows the plans' diffs and computes into a KV memory of num_blocks * block_size slots.
struct KvWorker {
  KvWorker(std::uint32_t blocks, std::uint32_t bs) : bs(bs), kv(std::size_t(blocks) * bs, 0), holders(blocks, 0) {}
  struct Req {
    std::vector<std::int32_t> tokens;
    std::uint32_t computed = 0;
    std::vector<std::uint32_t> blocks;
  };
  std::uint32_t bs;
  std::vector<std::uint64_t> kv;
  std::vector<std::uint32_t> holders;
  std::map<std::uint64_t, Req> reqs;

  std::uint64_t& slot(const Req& r, std::uint32_t pos) { return kv[std::size_t(r.blocks.at(pos / bs)) * bs + pos % bs]; }

  // Returns the step's samples; fails the test on a plan that writes a shared block or runs past its table.
  std::map<std::uint64_t, std::int32_t> execute(schema::StepPlan::Reader plan) {
    for (auto id : plan.getFinishedIds()) {
      auto it = reqs.find(id);
      if (it == reqs.end()) continue;
      for (auto b : it->second.blocks) --holders[b];
      reqs.erase(it);
    }
    std::vector<std::pair<std::uint64_t, std::uint32_t>> work;
    for (auto nr : plan.getNewRequests()) {
      Req& r = reqs[nr.getRequestId()];
      for (auto t : nr.getTokenIds()) r.tokens.push_back(t);
      r.computed = nr.getNumComputedTokens();
      for (auto b : nr.getBlockIds()) r.blocks.push_back(b), ++holders[b];
      work.push_back({nr.getRequestId(), nr.getNumScheduledTokens()});
    }
    for (auto sr : plan.getScheduled()) {
      Req& r = reqs.at(sr.getRequestId());
      for (auto b : sr.getNewBlockIds()) r.blocks.push_back(b), ++holders[b];
      work.push_back({sr.getRequestId(), sr.getNumScheduledTokens()});
    }
    std::map<std::uint64_t, std::int32_t> sampled;
    for (auto [id, n] : work) {
      Req& r = reqs.at(id);
      BOOST_REQUIRE_LE(r.computed + n, r.tokens.size());
      for (std::uint32_t p = r.computed; p < r.computed + n; ++p) {
        BOOST_REQUIRE_MESSAGE(holders[r.blocks.at(p / bs)] == 1, "request " << id << " writes a shared block");
        slot(r, p) = kv_of(p == 0 ? 0 : slot(r, p - 1), r.tokens[p]);
      }
      r.computed += n;
      if (r.computed == r.tokens.size()) {
        sampled[id] = sample(slot(r, r.computed - 1));
        r.tokens.push_back(sampled[id]);
      }
    }
    return sampled;
  }
};

struct SimOutcome {
  std::map<std::uint64_t, std::vector<std::int32_t>> outputs;
  std::map<std::uint64_t, schema::FinishReason> finish;
  SchedulerCounters counters;
  std::uint32_t steps = 0;
};

void check_invariants(const SchedulerCore& core, const KvCacheManager& mgr) {
  auto err = mgr.check();
  BOOST_REQUIRE_MESSAGE(err.empty(), err);
  for (const RequestState* r : core.running()) {
    auto* t = mgr.table(r->id);
    BOOST_REQUIRE(t);
    BOOST_REQUIRE_EQUAL(t->size(), r->num_blocks);
    BOOST_REQUIRE_LE(r->num_computed, r->num_tokens());
  }
  for (const RequestState* r : core.waiting()) BOOST_REQUIRE_EQUAL(r->num_blocks, 0u);
}

SimOutcome run_sim(const Workload& w, SchedulerLimits lim) {
  SchedulerCore core(lim);
  KvCacheManager mgr(lim.num_blocks, lim.block_size, lim.enable_prefix_caching);
  KvWorker worker(lim.num_blocks, lim.block_size);
  SimOutcome out;
  std::set<std::uint64_t> ever_scheduled;
  std::uint64_t last_fresh = 0;
  std::size_t next = 0;
  auto record = [&](const std::vector<TokenEventOut>& evs) {
    for (auto& e : evs) {
      auto& o = out.outputs[e.id];
      BOOST_REQUIRE_EQUAL(e.first_index, o.size());
      o.insert(o.end(), e.tokens.begin(), e.tokens.end());
      if (e.finish != schema::FinishReason::NONE) {
        BOOST_REQUIRE_MESSAGE(!out.finish.count(e.id), "request " << e.id << " finished twice");
        out.finish[e.id] = e.finish;
      }
    }
  };
  for (std::uint32_t step = 0; step < 200000; ++step) {
    for (; next < w.reqs.size() && w.reqs[next].arrive_step <= step; ++next)
      BOOST_REQUIRE(!core.add(submit_of(next + 1, w.reqs[next]), 0));
    for (std::size_t i = 0; i < next; ++i)
      if (w.reqs[i].abort_step == std::int64_t(step))
        if (auto ev = core.abort(i + 1, "test")) record({*ev});
    if (next == w.reqs.size() && !core.has_work() && !core.has_pending_frees()) break;
    auto d = core.schedule();
    core.apply_kv_reply(d, mgr.exchange(core.kv_request(d)));
    check_invariants(core, mgr);
    auto plan = core.build_plan(d);
    auto pv = plan.view();
    for (auto nr : pv->getNewRequests()) {
      // FCFS among equals: requests start for the first time in arrival order.
      if (ever_scheduled.insert(nr.getRequestId()).second) {
        BOOST_REQUIRE_GT(nr.getRequestId(), last_fresh);
        last_fresh = nr.getRequestId();
      }
    }
    auto sampled = worker.execute(*pv);
    auto result = StepResultMsg::make([&](schema::StepResult::Builder b) {
      auto o = b.initOutputs(static_cast<unsigned>(sampled.size()));
      unsigned i = 0;
      for (auto [id, tok] : sampled) o[i].setRequestId(id), o[i++].initTokens(1).set(0, tok);
    });
    record(core.update_from_result(result, 1));
    ++out.steps;
  }
  BOOST_CHECK(!core.has_work());
  BOOST_CHECK_EQUAL(out.finish.size(), w.reqs.size());  // every request ended, exactly once
  BOOST_CHECK_EQUAL(mgr.num_free(), lim.num_blocks);    // no leak
  BOOST_CHECK_EQUAL(mgr.num_tables(), 0u);
  BOOST_CHECK_EQUAL(mgr.check(), "");
  out.counters = core.counters();
  return out;
}

SchedulerLimits lim(std::uint32_t blocks, std::uint32_t tokens, bool caching) {
  SchedulerLimits l;
  l.max_num_seqs = 64;
  l.max_num_batched_tokens = tokens;
  l.num_blocks = blocks;
  l.block_size = 16;
  l.max_model_len = 2048;
  l.enable_prefix_caching = caching;
  return l;
}

}  // namespace

// Thousands of requests with random lengths and aborts, a pool small enough to force preemption; the
// invariants are checked after every step inside run_sim.
BOOST_AUTO_TEST_CASE(thousands_of_requests_with_aborts_and_preemption_keep_every_invariant) {
  auto w = make_workload(3000, 42, 0.1);
  for (bool caching : {false, true}) {
    BOOST_TEST_CONTEXT("prefix caching " << caching) {
      auto out = run_sim(w, lim(160, 512, caching));
      BOOST_CHECK_GT(out.counters.preemptions, 0u);
      BOOST_CHECK_GT(out.counters.aborted, 0u);
      if (caching) BOOST_CHECK_GT(out.counters.prefix_hits, 0u);
      BOOST_TEST_MESSAGE("caching " << caching << ": " << out.steps << " steps, " << out.counters.preemptions
                                    << " preemptions, prefix hits " << out.counters.prefix_hits << "/"
                                    << out.counters.prefix_queries << " tokens");
      for (auto& [id, reason] : out.finish) {
        auto& r = w.reqs[id - 1];
        auto& got = out.outputs[id];
        if (reason == schema::FinishReason::ABORT) {
          BOOST_CHECK_LE(got.size(), r.max_tokens);
          continue;
        }
        BOOST_REQUIRE(reason == schema::FinishReason::LENGTH);
        BOOST_REQUIRE_MESSAGE(got == reference_output(r.prompt, r.max_tokens), "request " << id << " diverged");
      }
    }
  }
}

// Greedy outputs are identical with and without prefix caching, with and without chunked prefill (the token
// budget below or above the prompts), and across preemption and resumption (a small pool or a large one).
BOOST_AUTO_TEST_CASE(outputs_are_identical_across_caching_chunking_and_preemption) {
  auto w = make_workload(600, 7, 0.0);
  struct Variant {
    const char* name;
    SchedulerLimits l;
  };
  std::vector<Variant> variants = {{"no cache, no chunking, no preemption", lim(4000, 4096, false)},
                                   {"cache, chunks of 64 tokens", lim(4000, 64, true)},
                                   {"cache, small pool: preemption", lim(120, 512, true)},
                                   {"no cache, chunks of 48, small pool", lim(120, 48, false)}};
  std::map<std::uint64_t, std::vector<std::int32_t>> first;
  for (auto& v : variants) {
    BOOST_TEST_CONTEXT(v.name) {
      auto out = run_sim(w, v.l);
      BOOST_TEST_MESSAGE(v.name << ": " << out.steps << " steps, " << out.counters.preemptions << " preemptions, "
                                << out.counters.prefix_hits << " cached tokens");
      if (first.empty()) {
        first = out.outputs;
        BOOST_CHECK_EQUAL(out.counters.preemptions, 0u);
      } else {
        BOOST_CHECK((out.outputs == first));
      }
      if (v.l.num_blocks < 1000) BOOST_CHECK_GT(out.counters.preemptions, 0u);
      if (v.l.enable_prefix_caching) BOOST_CHECK_GT(out.counters.prefix_hits, 0u);
    }
  }
  for (auto& [id, toks] : first) BOOST_REQUIRE((toks == reference_output(w.reqs[id - 1].prompt, w.reqs[id - 1].max_tokens)));
}

// The whole actor system with prefix caching on: outputs, a drained pool, and /metrics in vLLM's names.
BOOST_AUTO_TEST_CASE(actor_system_with_prefix_caching_serves_metrics) {
  auto cfg = sim_config(2, 300);
  cfg.enable_prefix_caching = true;
  cfg.max_num_seqs = 32;
  cfg.max_num_batched_tokens = 256;
  SimCluster c(cfg);
  std::mt19937 rng(5);
  std::vector<std::int32_t> system(64);
  for (auto& t : system) t = std::int32_t(rng() % 256);
  std::map<std::uint64_t, std::pair<std::vector<std::int32_t>, std::uint32_t>> sent;
  for (std::uint64_t id = 1; id <= 200; ++id) {
    auto p = system;
    for (std::uint32_t k = 0, n = 1 + rng() % 100; k < n; ++k) p.push_back(std::int32_t(rng() % 256));
    std::uint32_t max_tokens = 1 + rng() % 60;
    c.submit(id, p, max_tokens);
    sent[id] = {p, max_tokens};
  }
  BOOST_REQUIRE(c.rec->wait_finished(200, 120));
  {
    std::lock_guard lk(c.rec->mu);
    for (auto& [id, r] : c.rec->requests) {
      auto& [prompt, max_tokens] = sent[id];
      BOOST_REQUIRE(r.finish == schema::FinishReason::LENGTH);
      BOOST_REQUIRE_EQUAL(r.tokens.size(), max_tokens);
      for (std::size_t i = 0; i < r.tokens.size(); ++i)
        BOOST_REQUIRE_EQUAL(r.tokens[i], SimBackend::token_at(prompt[0], 0, prompt.size() + i));
    }
  }
  auto [free, total] = c.wait_pool_drained(10);
  BOOST_CHECK_EQUAL(free, total);
  auto m = http_request("127.0.0.1", c.port, "GET", "/metrics");
  BOOST_REQUIRE_EQUAL(m.status, 200);
  for (const char* name : {"vllm:num_requests_running{", "vllm:num_requests_waiting{", "vllm:kv_cache_usage_perc{",
                           "vllm:prefix_cache_queries_total{", "vllm:prefix_cache_hits_total{",
                           "vllm:num_preemptions_total{", "vllm:prompt_tokens_total{", "vllm:generation_tokens_total{",
                           "vllm:request_success_total{", "vllm:time_to_first_token_seconds_bucket{",
                           "vllm:inter_token_latency_seconds_bucket{", "vllm:e2e_request_latency_seconds_bucket{",
                           "vllm:request_queue_time_seconds_bucket{"})
    BOOST_CHECK_MESSAGE(m.body.find(name) != std::string::npos, name << " missing");
  BOOST_CHECK(m.body.find("finished_reason=\"length\"} 200.0") != std::string::npos);
  BOOST_CHECK(m.body.find("vllm:e2e_request_latency_seconds_count{model_name=\"") != std::string::npos);
  BOOST_CHECK(m.body.find("vllm:prefix_cache_hits_total{model_name=\"troupe-default\"} 0.0") == std::string::npos);
  BOOST_CHECK_EQUAL(http_request("127.0.0.1", c.port, "POST", "/metrics").status, 405);
}
