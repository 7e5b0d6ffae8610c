#pragma once
// A stable stand-in for the gpu_worker of one rank in a multi-node group. The scheduler holds the slots,
// never the workers: when a node is lost the coordinator unbinds every slot (steps out fail at once,
// steps sent later fail fast) and when the group re-forms it binds the fresh workers, so the scheduler's
// handles outlive any worker.
#include "runtime/interfaces.hpp"

#include <caf/event_based_actor.hpp>

namespace troupe {

using bind_atom = caf::atom_constant<caf::atom("bind")>;
using unbind_atom = caf::atom_constant<caf::atom("unbind")>;

// Messages: StepPlanMsg (forwarded, as a gpu_worker), (bind_atom, gpu_worker_actor) -> bool (ack once
// bound), (unbind_atom, std::string why).
caf::behavior rank_slot(caf::event_based_actor* self, std::uint32_t rank);

}  // namespace troupe
