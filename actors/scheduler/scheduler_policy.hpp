#pragma once
// The scheduling policy as small function objects: they look at the queues and the budgets and say what
// to run and whom to preempt; SchedulerCore carries it out. vLLM v1's rules:
//  - running requests first, oldest first, each taking min(tokens left, token budget): decodes and the
//    chunks of long prompts share one budget;
//  - a running request that needs blocks when none are free preempts the newest running request (by
//    recompute), possibly itself;
//  - only when nobody was preempted, waiting requests are admitted in FCFS order while tokens, sequence
//    slots and blocks last; nobody overtakes the head of the queue.
#include "actors/scheduler/request_state.hpp"

#include <cstdint>
#include <deque>
#include <span>
#include <vector>

namespace troupe {

struct ScheduledItem {
  RequestState* req;
  std::uint32_t num_new;
};

// What a step may still spend; the policies draw from it.
struct StepBudget {
  std::uint32_t tokens = 0;
  std::uint32_t free_blocks = 0;  // the scheduler's mirror of the kv manager's free count
};

struct BlockMath {
  std::uint32_t block_size = 16;
  std::uint32_t blocks_for(std::uint32_t n) const { return (n + block_size - 1) / block_size; }
  // Blocks a request must add to compute num_new more tokens.
  std::uint32_t extra(const RequestState& r, std::uint32_t num_new) const {
    std::uint32_t want = blocks_for(r.num_computed + num_new);
    return want > r.num_blocks ? want - r.num_blocks : 0;
  }
};

struct RunningPick {
  std::vector<ScheduledItem> items;     // in running order
  std::vector<RequestState*> preempt;   // newest first; none of them is in items
};

struct ScheduleRunning {
  BlockMath math;
  RunningPick operator()(std::span<RequestState* const> running, StepBudget& b) const;
};

struct AdmitWaiting {
  BlockMath math;
  std::uint32_t max_num_seqs = 256;
  // Returns the admitted prefix of the queue with each one's tokens.
  std::vector<ScheduledItem> operator()(const std::deque<RequestState*>& waiting, std::size_t num_running,
                                        StepBudget& b) const;
};

}  // namespace troupe
