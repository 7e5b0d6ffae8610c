// The head's side of a multi-node group: the published join service, placing ranks on joined nodes,
// and the rules for losing and re-forming the group.
//
//   node joins ──▶ every slot filled? ──▶ form_group (fresh workers on every node, a new generation)
//                                              │ all WorkerReady
//                                              ▼
//   bind the rank slots ──▶ first time: spawn kv/scheduler/frontend; later: scheduler (group, true)
//
//   node lost / worker exited ──▶ unbind every slot (steps out fail now), scheduler (group, false) fails
//   every request with 503, /health 503, workers everywhere stopped; wait for the next join.
#include "actors/coordinator/coord_state.hpp"
#include "actors/coordinator/rank_slot.hpp"
#include "actors/node/join_auth.hpp"
#include "actors/node/join_service.hpp"

#include <caf/actor_system.hpp>
#include <caf/io/middleman.hpp>
#include <caf/send.hpp>
#include <spdlog/spdlog.h>

namespace troupe::coord {
namespace {

std::uint32_t ranks_per_node(const CoordState& st) {
  return static_cast<std::uint32_t>(st.cfg.tensor_parallel_size / st.cfg.nodes);
}

std::string missing_nodes(const CoordState& st) {
  std::string out;
  for (std::size_t k = 1; k < st.agents.size(); ++k)
    if (!st.agents[k]) out += (out.empty() ? "" : ", ") + std::to_string(k);
  return out;
}

void set_health(CoordState& st, bool healthy, const std::string& message) {
  st.healthy = healthy;
  st.health_message = message;
  publish_health(st);
}

// Stops every worker of the current group: local ones directly, remote ones through their node's agent
// (a remote worker is linked to its agent; an exit sent to it straight would take the agent down too).
void release_workers(Self self, CoordState& st, const std::string& why) {
  auto release = ReleaseWorkersMsg::make([&](schema::ReleaseWorkers::Builder b) {
    b.setGeneration(st.generation);
    b.setReason(why);
  });
  for (std::size_t k = 1; k < st.agents.size(); ++k)
    if (st.agents[k]) caf::anon_send(st.agents[k], release);
  for (auto& w : st.workers)
    if (w && w.node() == self->node()) self->send_exit(w, caf::exit_reason::user_shutdown);
  st.workers.assign(st.workers.size(), gpu_worker_actor{});
  st.workers_ready = 0;
}

void lose_group(Self self, const StatePtr& stp, const std::string& why) {
  auto& st = *stp;
  if (st.shutting_down) return;
  ++st.generation;  // replies of the group being formed or run are stale from here on
  st.forming = false;
  spdlog::error("{}: requests in flight fail; the group re-forms when every node is joined", why);
  set_health(st, false, why);
  for (auto& s : st.slots) caf::anon_send(s, unbind_atom::value, why);
  if (st.sched) caf::anon_send(st.sched, group_atom::value, false, why);
  release_workers(self, st, why);
  // A worker that exited while its node stays joined (a crash, not a lost node) gets no join event to
  // re-form on: retry after a heartbeat timeout (slow enough that a crash loop costs little).
  self->delayed_send(self, std::chrono::milliseconds(st.cfg.heartbeat_timeout_ms),
                     node_event(schema::NodeEvent::Kind::REFORM, 0, "", why), node_agent_actor{});
}

// The group is ready and bound: the first time, the rest of the service starts; later it resumes.
void resume(Self self, const StatePtr& stp, std::uint32_t min_blocks) {
  auto& st = *stp;
  st.forming = false;
  if (!st.sched) return spawn_control_plane(self, stp, min_blocks);
  if (min_blocks < st.num_blocks)
    return lose_group(self, stp, "the re-formed group holds " + std::to_string(min_blocks) + " KV blocks, the pool " +
                                   std::to_string(st.num_blocks));
  caf::anon_send(st.sched, group_atom::value, true, std::string());
  spdlog::info("worker group whole again (generation {}): serving", st.generation);
  set_health(st, true, "ok");
}

void publish_join_port(Self self, const StatePtr& stp) {
  auto& st = *stp;
  auto js = caf::actor_cast<join_service_actor>(st.join);
  auto port = static_cast<std::uint16_t>(st.cfg.join_port);
  self->request(self->system().middleman().actor_handle(), std::chrono::seconds(30), caf::publish_atom::value, port,
                caf::actor_cast<caf::strong_actor_ptr>(js), self->system().message_types(js), st.cfg.join_host, true)
    .then(
      [stp](std::uint16_t bound) {
        spdlog::info("waiting for {} worker node(s) to join on {}:{}", stp->cfg.nodes - 1, stp->cfg.join_host, bound);
      },
      [self, stp](caf::error& err) {
        startup_done(*stp, "cannot open the join port " + stp->cfg.join_host + ":" + std::to_string(stp->cfg.join_port) +
                             ": " + self->system().render(err));
      });
}

}  // namespace

void start_cluster(Self self, const StatePtr& stp) {
  auto& st = *stp;
  auto n = static_cast<std::uint32_t>(st.cfg.tensor_parallel_size);
  for (std::uint32_t r = 0; r < n; ++r) st.slots.push_back(self->spawn<caf::linked>(rank_slot, r));
  st.agents.assign(st.cfg.nodes, node_agent_actor{});
  st.node_names.assign(st.cfg.nodes, std::string());
  st.workers.assign(n, gpu_worker_actor{});
  JoinServiceOptions o;
  o.nodes = static_cast<std::uint32_t>(st.cfg.nodes);
  o.ranks_per_node = ranks_per_node(st);
  o.backend = st.cfg.backend;
  o.token = st.cfg.join_token;
  o.heartbeat_interval = std::chrono::milliseconds(st.cfg.heartbeat_interval_ms);
  o.heartbeat_timeout = std::chrono::milliseconds(st.cfg.heartbeat_timeout_ms);
  o.startup_timeout = std::chrono::milliseconds(static_cast<long>(st.cfg.node_timeout_seconds * 1000));
  st.join = self->spawn<caf::linked>(join_service, o, caf::actor_cast<coordinator_actor>(self));
  publish_join_port(self, stp);
}

void place_remote(Self self, const StatePtr& stp, std::uint64_t gen, std::uint32_t rank, std::uint32_t node,
                  std::function<void(gpu_worker_actor)> placed) {
  auto& st = *stp;
  // One ncclUniqueId per group generation (form_group draws it), the same for every rank.
  auto msg = PlaceWorkerMsg::make([&](schema::PlaceWorker::Builder b) {
    b.setRank(rank);
    b.setWorldSize(static_cast<std::uint32_t>(st.cfg.tensor_parallel_size));
    b.setGeneration(gen);
    auto id = b.initNcclId();
    id.setGroupId(st.group_id);
    id.setGeneration(gen);
    id.setId(capnp::Data::Reader(reinterpret_cast<const capnp::byte*>(st.nccl_id.data()), st.nccl_id.size()));
  });
  auto name = st.node_names[node];
  self->request(st.agents[node], std::chrono::seconds(60), msg)
    .then(
      [self, stp, gen, placed](const gpu_worker_actor& w) {
        if (gen != stp->generation) return;  // the agent drops it when the next group is placed
        self->monitor(w);
        placed(w);
      },
      [self, stp, gen, rank, name](caf::error& err) {
        if (gen != stp->generation) return;
        group_failed(self, stp, "placing rank " + std::to_string(rank) + " on node '" + name + "' failed: " +
                                  self->system().render(err));
      });
}

void group_ready(Self self, const StatePtr& stp, std::uint32_t min_blocks) {
  auto& st = *stp;
  if (!st.multi()) return spawn_control_plane(self, stp, min_blocks);
  // Every slot must hold its new worker before the scheduler may step again.
  auto gen = st.generation;
  auto left = std::make_shared<std::size_t>(st.slots.size());
  for (std::size_t r = 0; r < st.slots.size(); ++r) {
    self->request(st.slots[r], std::chrono::seconds(10), bind_atom::value, st.workers[r])
      .then(
        [self, stp, gen, left, min_blocks](bool) {
          if (gen == stp->generation && --*left == 0) resume(self, stp, min_blocks);
        },
        [self, stp, gen](caf::error& err) {
          if (gen == stp->generation) group_failed(self, stp, "binding a rank slot failed: " + self->system().render(err));
        });
  }
}

void group_failed(Self self, const StatePtr& stp, const std::string& why) {
  auto& st = *stp;
  if (!st.started) {  // at startup a failure ends the start, deterministically
    if (st.failed.empty()) startup_done(st, why);
    return;
  }
  lose_group(self, stp, why);
}

void on_node_event(Self self, const StatePtr& stp, const NodeEventMsg& msg, const node_agent_actor& agent) {
  auto& st = *stp;
  auto ev = msg.view();
  auto slot = ev->getSlot();
  std::string name = ev->getNodeName();
  switch (ev->getKind()) {
    case schema::NodeEvent::Kind::REFORM:
      if (!st.started || st.healthy || st.forming || st.shutting_down || !missing_nodes(st).empty()) return;
      spdlog::info("every node is joined: forming the worker group again (after: {})", ev->getReason().cStr());
      return form_group(self, stp);
    case schema::NodeEvent::Kind::TIMED_OUT:
      if (!st.started && !st.forming && st.failed.empty()) startup_done(st, ev->getReason());
      return;
    case schema::NodeEvent::Kind::JOINED:
      if (slot >= st.agents.size()) return;
      st.agents[slot] = agent;
      st.node_names[slot] = name;
      if (auto missing = missing_nodes(st); !missing.empty()) {
        spdlog::info("node '{}' joined as slot {}; still missing node slot(s) {}", name, slot, missing);
        if (st.started) set_health(st, false, "waiting for node slot(s) " + missing + " to join again");
        return;
      }
      if (st.forming || !st.failed.empty() || st.shutting_down) return;
      spdlog::info("node '{}' joined as slot {}: every node is here, forming the worker group", name, slot);
      return form_group(self, stp);
    case schema::NodeEvent::Kind::LOST: {
      if (slot >= st.agents.size()) return;
      st.agents[slot] = nullptr;
      std::string why = "node '" + name + "' (slot " + std::to_string(slot) + ") lost: " + ev->getReason().cStr();
      if (!st.started && !st.forming) return;  // still waiting for the others: it may come back
      return group_failed(self, stp, why);
    }
  }
}

void stop_cluster(Self self, CoordState& st) {
  auto release = ReleaseWorkersMsg::make([&](schema::ReleaseWorkers::Builder b) {
    b.setGeneration(std::numeric_limits<std::uint64_t>::max());
    b.setReason("the head is shutting down");
  });
  for (std::size_t k = 1; k < st.agents.size(); ++k)
    if (st.agents[k]) caf::anon_send(st.agents[k], release);
  if (st.join) self->send_exit(st.join, caf::exit_reason::user_shutdown);
  for (auto& s : st.slots) self->send_exit(s, caf::exit_reason::user_shutdown);
}

std::vector<gpu_worker_actor> scheduler_workers(const CoordState& st) {
  if (!st.multi()) return st.workers;
  std::vector<gpu_worker_actor> out;
  for (auto& s : st.slots) out.push_back(caf::actor_cast<gpu_worker_actor>(s));
  return out;
}

}  // namespace troupe::coord
