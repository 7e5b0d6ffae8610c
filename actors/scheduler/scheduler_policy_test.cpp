#include <boost/test/unit_test.hpp>

#include "actors/scheduler/scheduler_policy.hpp"

#include <map>
#include <memory>

using namespace troupe;

namespace {

// A request described by what the policy reads: tokens known, tokens computed, blocks held.
struct Req {
  std::uint64_t id;
  std::uint32_t tokens, computed, blocks;
};

struct Case {
  const char* what;
  std::vector<Req> running, waiting;
  std::uint32_t token_budget, free_blocks, max_num_seqs;
  std::map<std::uint64_t, std::uint32_t> expect_items;  // who runs, how many tokens
  std::vector<std::uint64_t> expect_preempt;            // newest first
  std::uint32_t expect_free_after;
};

std::unique_ptr<RequestState> make(const Req& r) {
  auto s = std::make_unique<RequestState>();
  s->id = r.id;
  s->tokens.assign(r.tokens, 1);
  s->num_computed = r.computed;
  s->num_blocks = r.blocks;
  return s;
}

}  // namespace

BOOST_AUTO_TEST_CASE(policy_table) {
  // Block size 16 throughout.
  std::vector<Case> cases = {
    {"decodes first, then a prompt chunk takes what the token budget leaves",
     {{1, 11, 10, 1}, {2, 100, 40, 3}}, {}, 30, 10, 8, {{1, 1}, {2, 29}}, {}, 8},
    {"no free block: the newest running request is preempted, then the next newest is itself",
     {{1, 17, 16, 1}, {2, 33, 32, 2}, {3, 5, 4, 1}}, {}, 100, 0, 8, {{1, 1}}, {3, 2}, 2},
    {"a request inside its last block needs no new block",
     {{1, 20, 19, 2}}, {}, 100, 0, 8, {{1, 1}}, {}, 0},
    {"waiting requests fill the remaining budget in FCFS order",
     {{1, 11, 10, 1}}, {{2, 20, 0, 0}, {3, 50, 0, 0}, {4, 10, 0, 0}}, 60, 10, 8, {{1, 1}, {2, 20}, {3, 39}}, {}, 5},
    {"the head of the queue does not fit: nobody overtakes it",
     {}, {{2, 50, 0, 0}, {3, 10, 0, 0}}, 40, 2, 8, {}, {}, 2},
    {"the sequence budget caps admissions",
     {{1, 11, 10, 1}}, {{2, 10, 0, 0}, {3, 10, 0, 0}}, 100, 10, 2, {{1, 1}, {2, 10}}, {}, 9},
    {"a resumed request recomputes its prompt and outputs",
     {}, {{5, 40, 0, 0}}, 100, 10, 8, {{5, 40}}, {}, 7},
  };
  for (auto& c : cases) {
    BOOST_TEST_CONTEXT(c.what) {
      std::vector<std::unique_ptr<RequestState>> owned;
      std::vector<RequestState*> running;
      std::deque<RequestState*> waiting;
      for (auto& r : c.running) running.push_back(owned.emplace_back(make(r)).get());
      for (auto& r : c.waiting) waiting.push_back(owned.emplace_back(make(r)).get());
      StepBudget b{c.token_budget, c.free_blocks};
      BlockMath math{16};
      auto pick = ScheduleRunning{math}(running, b);
      std::map<std::uint64_t, std::uint32_t> items;
      for (auto& it : pick.items) items[it.req->id] = it.num_new;
      std::vector<std::uint64_t> preempted;
      for (auto* r : pick.preempt) preempted.push_back(r->id);
      if (pick.preempt.empty()) {
        std::size_t still_running = running.size();
        for (auto& it : AdmitWaiting{math, c.max_num_seqs}(waiting, still_running, b)) items[it.req->id] = it.num_new;
      }
      BOOST_CHECK((items == c.expect_items));
      BOOST_CHECK((preempted == c.expect_preempt));
      BOOST_CHECK_EQUAL(b.free_blocks, c.expect_free_after);
    }
  }
}
