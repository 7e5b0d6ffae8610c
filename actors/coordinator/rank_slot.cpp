#include "actors/coordinator/rank_slot.hpp"

#include <map>

namespace troupe {
namespace {
struct SlotState {
  std::uint32_t rank = 0;
  gpu_worker_actor worker;
  std::string why = "the worker group is not formed yet";
  std::uint64_t next_id = 0;
  std::map<std::uint64_t, caf::typed_response_promise<StepResultMsg>> pending;  // steps out, by our id
};

caf::error lost(const SlotState& st) {
  return caf::make_error(caf::sec::runtime_error, "rank " + std::to_string(st.rank) + ": " + st.why);
}
}  // namespace

caf::behavior rank_slot(caf::event_based_actor* self, std::uint32_t rank) {
  auto st = std::make_shared<SlotState>();
  st->rank = rank;
  return {
    [self, st](const StepPlanMsg& plan) -> caf::result<StepResultMsg> {
      if (!st->worker) return lost(*st);
      auto id = st->next_id++;
      auto p = self->make_response_promise<StepResultMsg>();
      st->pending.emplace(id, p);
      // A promise is answered once: by the worker, or by unbind when the worker is gone first.
      self->request(st->worker, caf::infinite, plan)
        .then(
          [st, id](const StepResultMsg& r) {
            if (auto it = st->pending.find(id); it != st->pending.end()) {
              it->second.deliver(r);
              st->pending.erase(it);
            }
          },
          [st, id](caf::error& e) {
            if (auto it = st->pending.find(id); it != st->pending.end()) {
              it->second.deliver(std::move(e));
              st->pending.erase(it);
            }
          });
      return p;
    },
    [st](bind_atom, const gpu_worker_actor& w) -> bool {
      st->worker = w;
      return true;
    },
    [st](unbind_atom, const std::string& why) {
      st->worker = nullptr;
      st->why = why;
      for (auto& [id, p] : st->pending) p.deliver(lost(*st));
      st->pending.clear();
    },
  };
}

}  // namespace troupe
