#pragma once
// The vocabulary between a head and its worker nodes (runtime/schema/cluster.capnp): one envelope alias
// per struct and CAF's type IDs for them. The actor interfaces that use them are in runtime/interfaces.hpp.
#include "runtime/schema/cluster.capnp.h"
#include "runtime/schema/messages.hpp"

namespace troupe {

using JoinHelloMsg = Msg<schema::JoinHello>;
using JoinChallengeMsg = Msg<schema::JoinChallenge>;
using JoinRequestMsg = Msg<schema::JoinRequest>;
using JoinReplyMsg = Msg<schema::JoinReply>;
using HeartbeatMsg = Msg<schema::Heartbeat>;
using PlaceWorkerMsg = Msg<schema::PlaceWorker>;
using ReleaseWorkersMsg = Msg<schema::ReleaseWorkers>;
using NodeEventMsg = Msg<schema::NodeEvent>;

// coordinator -> scheduler: the worker group is whole again (true) or lost (false, with why).
using group_atom = caf::atom_constant<caf::atom("group")>;

}  // namespace troupe

CAF_BEGIN_TYPE_ID_BLOCK(troupe_cluster, caf::id_block::troupe_msgs_last_type_id + 1)
  CAF_ADD_TYPE_ID(troupe_cluster, (troupe::JoinHelloMsg))
  CAF_ADD_TYPE_ID(troupe_cluster, (troupe::JoinChallengeMsg))
  CAF_ADD_TYPE_ID(troupe_cluster, (troupe::JoinRequestMsg))
  CAF_ADD_TYPE_ID(troupe_cluster, (troupe::JoinReplyMsg))
  CAF_ADD_TYPE_ID(troupe_cluster, (troupe::HeartbeatMsg))
  CAF_ADD_TYPE_ID(troupe_cluster, (troupe::PlaceWorkerMsg))
  CAF_ADD_TYPE_ID(troupe_cluster, (troupe::ReleaseWorkersMsg))
  CAF_ADD_TYPE_ID(troupe_cluster, (troupe::NodeEventMsg))
CAF_END_TYPE_ID_BLOCK(troupe_cluster)
