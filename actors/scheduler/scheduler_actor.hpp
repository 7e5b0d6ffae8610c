#pragma once
#include "actors/scheduler/scheduler_core.hpp"
#include "runtime/interfaces.hpp"

#include <caf/typed_event_based_actor.hpp>

#include <vector>

namespace troupe {
// The engine loop as an actor: one step in flight at a time; submits and aborts are taken between steps.
scheduler_actor::behavior_type scheduler(scheduler_actor::pointer self, SchedulerLimits limits, kv_cache_actor kv,
                                         std::vector<gpu_worker_actor> workers, double shutdown_grace_s);
}
