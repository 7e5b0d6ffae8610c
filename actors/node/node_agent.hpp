#pragma once
// A worker node's agent: the actor the head talks to after a join. It spawns the gpu_workers the head
// places here (detached, one per rank), answers heartbeats, and ends the session when the head goes
// quiet (no heartbeat for the timeout the head gave) or its connection closes; the session's end stops
// every worker, and node_entry joins again.
#include "runtime/interfaces.hpp"

#include <caf/event_based_actor.hpp>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>

namespace troupe {

// Shared between the agent (which ends it) and the node's main thread (which waits on it).
class NodeSession {
 public:
  void end(const std::string& why);
  // True once ended (then why() says why); waits at most `d`.
  bool wait_for(std::chrono::milliseconds d);
  std::string why() const;

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool ended_ = false;
  std::string why_;
};

// After the head accepts the join: (joined_atom, heartbeat timeout ms, the head's join service).
using joined_atom = caf::atom_constant<caf::atom("joined")>;

// devices: 0 = no limit (sim, cpu).
caf::behavior node_agent(caf::event_based_actor* self, std::uint32_t devices, std::shared_ptr<NodeSession> session);

}  // namespace troupe
