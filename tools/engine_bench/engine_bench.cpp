// Scheduler + KV-manager time per engine step, without actors or workers: what the CPU adds to every GPU
// step. 256 running requests (max-num-seqs) and a full waiting queue; requests finish and waiting ones take
// their place, so steps mix decodes with chunked prefills. A fake worker (not timed) computes the scheduled
// tokens and samples. Goal: well under 100 us per step.
//
//   engine_bench [--steps N] [--waiting N] [--prefix-caching 0|1] [--seed N]
#include "actors/kv_cache/kv_cache_manager.hpp"
#include "actors/scheduler/scheduler_core.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

using namespace troupe;
using Clock = std::chrono::steady_clock;

namespace {

struct Options {
  std::uint32_t steps = 3000, waiting = 1000, seqs = 256, budget = 8192, block_size = 16;
  bool prefix_caching = true;
  std::uint32_t seed = 1;
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    auto v = static_cast<std::uint32_t>(std::stoul(argv[i + 1]));
    if (k == "--steps") o.steps = v;
    else if (k == "--waiting") o.waiting = v;
    else if (k == "--prefix-caching") o.prefix_caching = v != 0;
    else if (k == "--seed") o.seed = v;
    else if (k == "--max-num-seqs") o.seqs = v;
    else std::fprintf(stderr, "unknown option %s\n", k.c_str()), std::exit(2);
  }
  return o;
}

// Chat-like traffic: a shared system prompt on most requests, then a user turn; short to long answers.
struct Traffic {
  explicit Traffic(std::uint32_t seed) : rng(seed), system(512) {
    for (auto& t : system) t = std::int32_t(rng() % 32000);
  }
  SubmitMsg next(std::uint64_t id) {
    return SubmitMsg::make([&](schema::SubmitRequest::Builder b) {
      std::uint32_t sys = rng() % 4 ? static_cast<std::uint32_t>(system.size()) : 0;
      std::uint32_t user = 16 + rng() % 1024;
      b.setRequestId(id);
      auto t = b.initPromptTokens(sys + user);
      for (unsigned i = 0; i < sys; ++i) t.set(i, system[i]);
      for (unsigned i = 0; i < user; ++i) t.set(sys + i, std::int32_t(rng() % 32000));
      b.initSampling().setMaxTokens(64 + rng() % 960);
    });
  }
  std::mt19937 rng;
  std::vector<std::int32_t> system;
};

// The worker's view, enough to know who samples.
struct FakeWorker {
  struct R {
    std::uint32_t known = 0, computed = 0;
  };
  std::unordered_map<std::uint64_t, R> reqs;
  std::uint32_t tok = 0;
  StepResultMsg run(schema::StepPlan::Reader plan) {
    for (auto id : plan.getFinishedIds()) reqs.erase(id);
    std::vector<std::uint64_t> sampled;
    auto step = [&](std::uint64_t id, std::uint32_t n) {
      R& r = reqs[id];
      r.computed += n;
      if (r.computed == r.known) ++r.known, sampled.push_back(id);
    };
    for (auto nr : plan.getNewRequests()) {
      reqs[nr.getRequestId()] = {nr.getTokenIds().size(), nr.getNumComputedTokens()};
      step(nr.getRequestId(), nr.getNumScheduledTokens());
    }
    for (auto sr : plan.getScheduled()) step(sr.getRequestId(), sr.getNumScheduledTokens());
    return StepResultMsg::make([&](schema::StepResult::Builder b) {
      auto o = b.initOutputs(static_cast<unsigned>(sampled.size()));
      for (unsigned i = 0; i < sampled.size(); ++i) {
        o[i].setRequestId(sampled[i]);
        o[i].initTokens(1).set(0, std::int32_t(++tok % 32000));
      }
    });
  }
};

double pct(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * double(v.size())))];
}

}  // namespace

int main(int argc, char** argv) {
  auto o = parse(argc, argv);
  SchedulerLimits lim;
  lim.max_num_seqs = o.seqs;
  lim.max_num_batched_tokens = o.budget;
  lim.max_model_len = 4096;
  lim.block_size = o.block_size;
  lim.num_blocks = o.seqs * 2048 / o.block_size;  // room for 256 sequences of 2k tokens: preemption is rare
  lim.max_waiting = o.waiting;
  lim.enable_prefix_caching = o.prefix_caching;
  SchedulerCore core(lim);
  KvCacheManager mgr(lim.num_blocks, lim.block_size, lim.enable_prefix_caching);
  Traffic traffic(o.seed);
  FakeWorker worker;
  std::uint64_t next_id = 1;
  std::vector<double> us;
  std::uint64_t tokens = 0, decodes = 0, running_sum = 0;
  std::uint32_t warmup = 300;
  for (std::uint32_t step = 0; step < warmup + o.steps; ++step) {
    while (core.num_waiting() < o.waiting) core.add(traffic.next(next_id++), 0);  // keep the queue full
    auto t0 = Clock::now();
    auto d = core.schedule();
    core.apply_kv_reply(d, mgr.exchange(core.kv_request(d)));
    auto plan = core.build_plan(d);
    auto t1 = Clock::now();
    auto result = worker.run(*plan.view());
    auto t2 = Clock::now();
    auto events = core.update_from_result(result);
    auto t3 = Clock::now();
    if (step < warmup) continue;
    us.push_back(std::chrono::duration<double, std::micro>((t1 - t0) + (t3 - t2)).count());
    tokens += d.total_tokens;
    running_sum += core.num_running();
    for (auto& it : d.items) decodes += it.num_new == 1;
  }
  double mean = 0;
  for (double x : us) mean += x;
  mean /= double(us.size());
  std::printf("engine_bench: %u steps, max-num-seqs %u, max-num-batched-tokens %u, block-size %u, prefix caching %s\n",
              o.steps, o.seqs, o.budget, o.block_size, o.prefix_caching ? "on" : "off");
  std::printf("  waiting queue %u (kept full), mean running %.1f, mean tokens/step %.0f, mean decodes/step %.1f\n",
              o.waiting, double(running_sum) / double(us.size()), double(tokens) / double(us.size()),
              double(decodes) / double(us.size()));
  std::printf("  preemptions %llu, prefix-cache hits %.1f%% of queried tokens\n",
              static_cast<unsigned long long>(core.counters().preemptions),
              core.counters().prefix_queries ? 100.0 * double(core.counters().prefix_hits) /
                                                 double(core.counters().prefix_queries) : 0.0);
  std::printf("  us/step: mean %.1f  p50 %.1f  p99 %.1f  max %.1f\n", mean, pct(us, 0.5), pct(us, 0.99),
              pct(us, 1.0));
  return mean < 100.0 ? 0 : 1;
}
