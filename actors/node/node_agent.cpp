#include "actors/node/node_agent.hpp"

#include "actors/gpu_worker/gpu_worker.hpp"

#include <caf/send.hpp>
#include <spdlog/spdlog.h>

#include <deque>
#include <limits>
#include <map>
#include <utility>

namespace troupe {

void NodeSession::end(const std::string& why) {
  std::lock_guard lk(mu_);
  if (ended_) return;
  ended_ = true;
  why_ = why;
  cv_.notify_all();
}

bool NodeSession::wait_for(std::chrono::milliseconds d) {
  std::unique_lock lk(mu_);
  return cv_.wait_for(lk, d, [this] { return ended_; });
}

std::string NodeSession::why() const {
  std::lock_guard lk(mu_);
  return why_;
}

namespace {

using Clock = std::chrono::steady_clock;
using watch_atom = caf::atom_constant<caf::atom("hb_watch")>;

struct Placed {
  gpu_worker_actor worker;
  std::uint64_t generation = 0;
};

struct AgentState {
  std::uint32_t devices = 0;
  std::shared_ptr<NodeSession> session;
  std::map<std::uint32_t, Placed> workers;  // by rank
  // The last workers stopped on purpose (address, rank): a worker that was exiting on its own (a crash) when the
  // head replaced it may still deliver its exit message after the unlink, and that must not end the session.
  // Bounded: such a message comes at once or never.
  std::deque<std::pair<caf::actor_addr, std::uint32_t>> retired;
  std::string nccl_id;                      // the latest group's ncclUniqueId (for the cuda backend)
  std::uint64_t nccl_generation = 0;
  caf::actor head;
  std::chrono::milliseconds timeout{0};  // 0: not joined yet
  Clock::time_point last_heartbeat = Clock::now();
};
using StatePtr = std::shared_ptr<AgentState>;

// Workers are linked to the agent (so they die with it); a worker stopped on purpose is unlinked first,
// or its exit would take the agent down too, and remembered in case its exit message was already on its way.
void retire(caf::event_based_actor* self, AgentState& st, std::uint32_t rank, const gpu_worker_actor& w) {
  constexpr std::size_t kRetiredKept = 64;
  self->unlink_from(w);
  st.retired.emplace_back(w.address(), rank);
  if (st.retired.size() > kRetiredKept) st.retired.pop_front();
  caf::anon_send_exit(w, caf::exit_reason::user_shutdown);
}

void stop_workers(caf::event_based_actor* self, AgentState& st, std::uint64_t below_generation) {
  for (auto it = st.workers.begin(); it != st.workers.end();) {
    if (it->second.generation >= below_generation) {
      ++it;
      continue;
    }
    retire(self, st, it->first, it->second.worker);
    it = st.workers.erase(it);
  }
}

void end_session(caf::event_based_actor* self, AgentState& st, const std::string& why) {
  stop_workers(self, st, std::numeric_limits<std::uint64_t>::max());
  st.session->end(why);
  self->quit(caf::exit_reason::user_shutdown);
}

caf::result<gpu_worker_actor> place(caf::event_based_actor* self, AgentState& st, const PlaceWorkerMsg& msg) {
  auto v = msg.view();
  auto rank = v->getRank();
  auto gen = v->getGeneration();
  auto nccl = v->getNcclId();
  if (gen >= st.nccl_generation) {
    st.nccl_generation = gen;
    st.nccl_id.assign(reinterpret_cast<const char*>(nccl.getId().begin()), nccl.getId().size());
  }
  stop_workers(self, st, gen);  // a newer group replaces whatever an older one left here
  if (auto it = st.workers.find(rank); it != st.workers.end()) {
    retire(self, st, rank, it->second.worker);
    st.workers.erase(it);
  }
  if (st.devices != 0 && st.workers.size() >= st.devices)
    return caf::make_error(caf::sec::runtime_error, "node has " + std::to_string(st.devices) + " devices, all in use");
  auto w = self->spawn<caf::detached + caf::linked>(gpu_worker);
  st.workers[rank] = {w, gen};
  spdlog::info("placed gpu worker of rank {} (group generation {})", rank, gen);
  return w;
}

}  // namespace

caf::behavior node_agent(caf::event_based_actor* self, std::uint32_t devices, std::shared_ptr<NodeSession> session) {
  auto stp = std::make_shared<AgentState>();
  stp->devices = devices;
  stp->session = std::move(session);
  // Workers are linked: one that exits (a crash) must not take the agent along; the head sees it go
  // (it monitors its workers) and places a new one. Any other exit request ends the session.
  self->set_exit_handler([self, stp](caf::exit_msg& em) {
    for (auto it = stp->workers.begin(); it != stp->workers.end(); ++it) {
      if (it->second.worker.address() != em.source) continue;
      spdlog::error("gpu worker of rank {} exited ({})", it->first, caf::to_string(em.reason));
      stp->workers.erase(it);
      return;
    }
    for (auto r = stp->retired.begin(); r != stp->retired.end(); ++r) {
      if (r->first != em.source) continue;
      spdlog::error("gpu worker of rank {} exited ({}) as it was being replaced", r->second,
                    caf::to_string(em.reason));
      stp->retired.erase(r);
      return;
    }
    end_session(self, *stp, "stopped (" + caf::to_string(em.reason) + ")");
  });
  self->set_down_handler([self, stp](caf::down_msg& dm) {
    if (stp->head && dm.source == stp->head.address())
      end_session(self, *stp, "the connection to the head closed (" + caf::to_string(dm.reason) + ")");
  });
  return {
    [stp](const HeartbeatMsg& hb) -> HeartbeatMsg {
      stp->last_heartbeat = Clock::now();
      return hb;
    },
    [self, stp](const PlaceWorkerMsg& msg) -> caf::result<gpu_worker_actor> { return place(self, *stp, msg); },
    [self, stp](const ReleaseWorkersMsg& msg) {
      auto v = msg.view();
      spdlog::info("head released the workers of generations below {}: {}", v->getGeneration(), v->getReason().cStr());
      stop_workers(self, *stp, v->getGeneration());
    },
    [self, stp](joined_atom, std::uint32_t timeout_ms, const caf::actor& head) {
      stp->head = head;
      stp->timeout = std::chrono::milliseconds(timeout_ms);
      stp->last_heartbeat = Clock::now();
      self->monitor(head);
      self->send(self, watch_atom::value);
    },
    [self, stp](watch_atom) {
      auto silent = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - stp->last_heartbeat);
      if (silent > stp->timeout)
        return end_session(self, *stp, "no heartbeat from the head for " + std::to_string(silent.count()) + " ms");
      self->delayed_send(self, stp->timeout / 4, watch_atom::value);
    },
  };
}

}  // namespace troupe
