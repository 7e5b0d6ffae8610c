#pragma once
// The coordinator's state and the steps shared by coordinator.cpp (startup, workers, shutdown) and
// node_group.cpp (the multi-node group: join service, node events, loss and re-forming).
#include "runtime/config/config.hpp"
#include "runtime/interfaces.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace troupe::coord {

struct CoordState {
  Config cfg;
  std::vector<gpu_worker_actor> workers;  // the current generation's, by rank (null while re-forming)
  kv_cache_actor kv;
  scheduler_actor sched;
  frontend_actor frontend;
  std::uint16_t port = 0;
  bool started = false;
  std::string failed;  // startup error
  std::vector<caf::typed_response_promise<std::uint16_t>> waiting;
  bool healthy = false;
  std::string health_message = "starting";
  std::uint32_t workers_ready = 0;
  std::uint32_t num_blocks = 0;  // the KV pool's size, fixed by the first group
  // Names this deployment's tensor-parallel group: deployments in one process (tests) never share one.
  std::uint64_t group_id = (std::uint64_t(std::random_device{}()) << 32) ^ std::random_device{}();

  // --- several nodes (cfg.nodes > 1) ---
  bool multi() const { return cfg.nodes > 1; }
  std::uint64_t generation = 0;         // bumps each time the group forms or is lost; stale replies see it
  bool forming = false;
  bool shutting_down = false;
  std::vector<caf::actor> slots;        // rank_slot proxies: what the scheduler holds, by rank
  std::vector<node_agent_actor> agents; // by node slot; [0] is the head itself
  std::vector<std::string> node_names;
  caf::actor join;                      // the published join service
  std::string nccl_id;                  // the current generation's ncclUniqueId bytes
};
using StatePtr = std::shared_ptr<CoordState>;
using Self = coordinator_actor::pointer;

HealthMsg health(const CoordState& st);
void publish_health(const CoordState& st);
void startup_done(CoordState& st, const std::string& error);

// coordinator.cpp: spawn (or place) one gpu_worker per rank, initialise them, then group_ready.
void form_group(Self self, const StatePtr& stp);
void spawn_control_plane(Self self, const StatePtr& stp, std::uint32_t num_blocks);

// node_group.cpp
void start_cluster(Self self, const StatePtr& stp);  // slots, join service, publish the join port
// A node's worker for `rank` (node slot `node`), or the error that stops the formation.
void place_remote(Self self, const StatePtr& stp, std::uint64_t gen, std::uint32_t rank, std::uint32_t node,
                  std::function<void(gpu_worker_actor)> placed);
void group_ready(Self self, const StatePtr& stp, std::uint32_t min_blocks);
void group_failed(Self self, const StatePtr& stp, const std::string& why);
void on_node_event(Self self, const StatePtr& stp, const NodeEventMsg& ev, const node_agent_actor& agent);
void stop_cluster(Self self, CoordState& st);
// Workers this scheduler steps: the slots with several nodes, else the workers themselves.
std::vector<gpu_worker_actor> scheduler_workers(const CoordState& st);

}  // namespace troupe::coord
