#define BOOST_TEST_MODULE cpu_equivalence
#include <boost/test/unit_test.hpp>

#include "actors/gpu_worker/cpu_backend.hpp"
#include "tests/sim_harness.hpp"

#include <map>
#include <random>

// The engine must not change what a model says: with the cpu backend (the real stories260K model) and
// greedy sampling, outputs are identical with and without prefix caching, with and without chunked
// prefill, and when a small KV pool forces preemption and resumption by recompute.

using namespace troupe;
using namespace troupe::testing;

namespace {

struct Run {
  std::string name;
  bool prefix_caching;
  int batched_tokens;  // below the longest prompt = chunked prefill
  int num_blocks;      // small = preemption
};

// Prompts share prefixes (so the cache hits) and are long enough to be chunked.
std::vector<std::vector<std::int32_t>> prompts() {
  std::mt19937 rng(42);
  std::vector<std::int32_t> shared(40);
  for (auto& t : shared) t = 3 + std::int32_t(rng() % 500);
  std::vector<std::vector<std::int32_t>> out;
  for (int i = 0; i < 24; ++i) {
    std::vector<std::int32_t> p{1};  // BOS
    if (i % 3 != 0) p.insert(p.end(), shared.begin(), shared.end());
    int extra = 5 + int(rng() % 60);
    for (int k = 0; k < extra; ++k) p.push_back(3 + std::int32_t(rng() % 500));
    out.push_back(std::move(p));
  }
  return out;
}

std::map<std::uint64_t, std::vector<std::int32_t>> generate(const Run& r, std::uint64_t* preemptions,
                                                             std::uint64_t* cache_hits) {
  Config cfg = sim_config(1, r.num_blocks);
  cfg.backend = "cpu";
  cfg.model = default_model_dir();
  cfg.max_model_len = 512;
  cfg.block_size = 16;
  cfg.max_num_seqs = 8;
  cfg.max_num_batched_tokens = r.batched_tokens;
  cfg.enable_prefix_caching = r.prefix_caching;
  SimCluster c(cfg);
  auto ps = prompts();
  for (std::uint64_t i = 0; i < ps.size(); ++i) c.submit_greedy(i + 1, ps[i], 40);
  BOOST_REQUIRE(c.rec->wait_finished(ps.size(), 300));
  std::map<std::uint64_t, std::vector<std::int32_t>> out;
  std::lock_guard lk(c.rec->mu);
  for (auto& [id, rec] : c.rec->requests) {
    BOOST_CHECK_MESSAGE(rec.finish == schema::FinishReason::LENGTH, r.name << ": request " << id << " " << rec.message);
    BOOST_CHECK(rec.contiguous);
    out[id] = rec.tokens;
  }
  caf::scoped_actor self{c.sys};
  self->request(c.sched, std::chrono::seconds(5), metrics_atom::value)
    .receive(
      [&](const MetricsMsg& m) {
        *preemptions = m.view()->getPreemptionsTotal();
        *cache_hits = m.view()->getPrefixCacheHitsTotal();
      },
      [](caf::error&) {});
  return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(greedy_outputs_do_not_depend_on_caching_chunking_or_preemption) {
  std::vector<Run> runs = {
    {"baseline", false, 2048, 4000},
    {"prefix caching", true, 2048, 4000},
    {"chunked prefill", false, 24, 4000},
    {"caching + chunking", true, 24, 4000},
    {"preemption", false, 2048, 14},          // 14 blocks of 16 tokens for 8 sequences of up to 145 tokens
    {"preemption + caching", true, 64, 14},
  };
  std::uint64_t pre = 0, hits = 0;
  auto base = generate(runs[0], &pre, &hits);
  BOOST_REQUIRE_EQUAL(base.size(), prompts().size());
  for (std::size_t i = 1; i < runs.size(); ++i) {
    auto got = generate(runs[i], &pre, &hits);
    BOOST_TEST_MESSAGE(runs[i].name << ": " << pre << " preemptions, " << hits << " prefix-cache hit tokens");
    if (runs[i].num_blocks < 100) BOOST_CHECK_GT(pre, 0u);    // the small pool did force recompute
    if (runs[i].prefix_caching) BOOST_CHECK_GT(hits, 0u);     // and the cache did serve tokens
    for (auto& [id, toks] : base) BOOST_CHECK_MESSAGE(got[id] == toks, runs[i].name << ": request " << id << " differs");
  }
}
