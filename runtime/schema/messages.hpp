#pragma once
// The message vocabulary of Troupe's actors: one envelope alias per Cap'n Proto struct, the atoms of
// payload-free requests, and CAF's type IDs for all of them. Interfaces (typed actors) are in
// runtime/interfaces.hpp.
#include "runtime/schema/envelope.hpp"
#include "runtime/schema/messages.capnp.h"

#include <caf/atom.hpp>
#include <caf/type_id.hpp>

namespace troupe {

using SubmitMsg = Msg<schema::SubmitRequest>;
using AbortMsg = Msg<schema::AbortRequest>;
using TokenEventsMsg = Msg<schema::TokenEvents>;
using StepPlanMsg = Msg<schema::StepPlan>;
using StepResultMsg = Msg<schema::StepResult>;
using WorkerInitMsg = Msg<schema::WorkerInit>;
using WorkerReadyMsg = Msg<schema::WorkerReady>;
using KvRequestMsg = Msg<schema::KvRequest>;
using KvReplyMsg = Msg<schema::KvReply>;
using HealthMsg = Msg<schema::Health>;
using MetricsMsg = Msg<schema::MetricsSnapshot>;

// Requests that carry no payload (atoms are at most 10 characters in CAF 0.17).
using metrics_atom = caf::atom_constant<caf::atom("metrics")>;
using health_atom = caf::atom_constant<caf::atom("health")>;
using shutdown_atom = caf::atom_constant<caf::atom("shutdown")>;
using drain_atom = caf::atom_constant<caf::atom("drain")>;
using step_atom = caf::atom_constant<caf::atom("step")>;
using topology_atom = caf::atom_constant<caf::atom("topology")>;
using started_atom = caf::atom_constant<caf::atom("started")>;

}  // namespace troupe

CAF_BEGIN_TYPE_ID_BLOCK(troupe_msgs, caf::first_custom_type_id)
  CAF_ADD_TYPE_ID(troupe_msgs, (troupe::SubmitMsg))
  CAF_ADD_TYPE_ID(troupe_msgs, (troupe::AbortMsg))
  CAF_ADD_TYPE_ID(troupe_msgs, (troupe::TokenEventsMsg))
  CAF_ADD_TYPE_ID(troupe_msgs, (troupe::StepPlanMsg))
  CAF_ADD_TYPE_ID(troupe_msgs, (troupe::StepResultMsg))
  CAF_ADD_TYPE_ID(troupe_msgs, (troupe::WorkerInitMsg))
  CAF_ADD_TYPE_ID(troupe_msgs, (troupe::WorkerReadyMsg))
  CAF_ADD_TYPE_ID(troupe_msgs, (troupe::KvRequestMsg))
  CAF_ADD_TYPE_ID(troupe_msgs, (troupe::KvReplyMsg))
  CAF_ADD_TYPE_ID(troupe_msgs, (troupe::HealthMsg))
  CAF_ADD_TYPE_ID(troupe_msgs, (troupe::MetricsMsg))
CAF_END_TYPE_ID_BLOCK(troupe_msgs)
