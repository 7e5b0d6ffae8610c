#pragma once
// The head's join endpoint, published on join-host:join-port. It runs the handshake (challenge, HMAC
// proof, admission by Membership), then heartbeats every joined node's agent and reports to the
// coordinator: NodeEvent joined / lost / timedOut (startup waited node-timeout-seconds in vain).
#include "runtime/interfaces.hpp"

#include <caf/event_based_actor.hpp>

#include <chrono>
#include <string>

namespace troupe {

struct JoinServiceOptions {
  std::uint32_t nodes = 1;           // the head included
  std::uint32_t ranks_per_node = 1;
  std::string backend;
  std::string token;
  std::chrono::milliseconds heartbeat_interval{1000};
  std::chrono::milliseconds heartbeat_timeout{5000};
  std::chrono::milliseconds startup_timeout{300000};
};

// Untyped inside (it also takes its own timer ticks); hand it out as join_service_actor.
caf::behavior join_service(caf::event_based_actor* self, JoinServiceOptions opts, coordinator_actor coordinator);

// The NodeEvent the join service sends; also used by tests.
NodeEventMsg node_event(schema::NodeEvent::Kind kind, std::uint32_t slot, const std::string& name,
                        const std::string& reason);

}  // namespace troupe
