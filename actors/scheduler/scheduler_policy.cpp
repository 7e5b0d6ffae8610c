#include "actors/scheduler/scheduler_policy.hpp"

#include <algorithm>

namespace troupe {

RunningPick ScheduleRunning::operator()(std::span<RequestState* const> running, StepBudget& b) const {
  RunningPick pick;
  std::size_t end = running.size();  // victims leave from the back
  for (std::size_t i = 0; i < end && b.tokens > 0; ++i) {
    RequestState* r = running[i];
    std::uint32_t num_new = std::min(r->num_tokens() - r->num_computed, b.tokens);
    if (num_new == 0) continue;
    std::uint32_t need = math.extra(*r, num_new);
    while (need > b.free_blocks && end > i) {
      RequestState* victim = running[--end];
      pick.preempt.push_back(victim);
      b.free_blocks += victim->num_blocks;
    }
    if (end == i) break;  // it preempted itself: nobody after it is left either
    b.free_blocks -= need;
    b.tokens -= num_new;
    pick.items.push_back({r, num_new});
  }
  return pick;
}

std::vector<ScheduledItem> AdmitWaiting::operator()(const std::deque<RequestState*>& waiting, std::size_t num_running,
                                                    StepBudget& b) const {
  std::vector<ScheduledItem> out;
  for (RequestState* r : waiting) {
    if (b.tokens == 0 || num_running + out.size() >= max_num_seqs) break;
    std::uint32_t num_new = std::min(r->num_tokens() - r->num_computed, b.tokens);
    std::uint32_t need = math.extra(*r, num_new);
    if (need > b.free_blocks) break;  // FCFS: nobody overtakes the head of the queue
    b.free_blocks -= need;
    b.tokens -= num_new;
    out.push_back({r, num_new});
  }
  return out;
}

}  // namespace troupe
