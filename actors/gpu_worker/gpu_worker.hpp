#pragma once
#include "runtime/interfaces.hpp"

#include <caf/typed_event_based_actor.hpp>

namespace troupe {
// One per GPU, spawned detached (its own thread: a step blocks on the device). A thin shell: the batch
// state follows the plans, the backend computes, rank 0 answers with the sampled tokens.
gpu_worker_actor::behavior_type gpu_worker(gpu_worker_actor::pointer self);
}
