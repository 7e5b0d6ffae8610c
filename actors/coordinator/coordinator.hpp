#pragma once
#include "runtime/config/config.hpp"
#include "runtime/interfaces.hpp"

#include <caf/typed_event_based_actor.hpp>

namespace troupe {
// The process's root actor: spawns one gpu_worker per device of the tensor-parallel group, then the
// kv-cache manager, scheduler and HTTP frontend; monitors the workers (a lost worker marks the service
// unhealthy and the scheduler fails the requests in flight); runs the graceful shutdown.
coordinator_actor::behavior_type coordinator(coordinator_actor::pointer self, Config cfg);
}
