#pragma once
// Every actor's interface, in one place: one line and one comment per message.
// Payloads are Cap'n Proto envelopes (runtime/schema/messages.hpp); atoms name payload-free requests.
#include "runtime/schema/cluster.hpp"
#include "runtime/schema/messages.hpp"

#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include <cstdint>
#include <string>

namespace troupe {

// Whoever submits requests: receives their tokens, one TokenEvents per step.
using token_sink_actor = caf::typed_actor<
  caf::reacts_to<TokenEventsMsg>>;                     // new tokens / finish of the sink's requests

using kv_cache_actor = caf::typed_actor<
  caf::replies_to<KvRequestMsg>::with<KvReplyMsg>,     // one batched exchange per step: frees, then allocs
  caf::replies_to<metrics_atom>::with<MetricsMsg>>;    // pool usage (the kv fields of the snapshot)

using gpu_worker_actor = caf::typed_actor<
  caf::replies_to<WorkerInitMsg>::with<WorkerReadyMsg>,  // load the model, size the KV memory
  caf::replies_to<StepPlanMsg>::with<StepResultMsg>>;    // execute one step; rank 0 returns samples

using scheduler_actor = caf::typed_actor<
  caf::reacts_to<SubmitMsg, token_sink_actor>,         // enqueue; tokens go to the sink
  caf::reacts_to<AbortMsg>,                            // abort; frees its blocks, sink gets finish=abort
  caf::reacts_to<step_atom>,                           // (self) run the next step if there is work
  caf::replies_to<metrics_atom>::with<MetricsMsg>,     // counters and queue sizes
  caf::replies_to<drain_atom>::with<MetricsMsg>,       // stop admitting; reply when no request is left
  caf::reacts_to<group_atom, bool, std::string>>;      // worker group lost (false: fail all) / whole again

using frontend_actor = caf::typed_actor<
  caf::reacts_to<TokenEventsMsg>,                      // tokens of the HTTP requests it submitted
  caf::reacts_to<HealthMsg>,                           // coordinator's health, served on /health
  caf::replies_to<started_atom>::with<std::uint16_t>,  // bind and listen; returns the port
  caf::replies_to<drain_atom>::with<bool>,             // stop accepting connections
  caf::replies_to<shutdown_atom>::with<bool>>;         // close everything, join the asio threads

// A worker node's agent (actors/node): hosts the gpu_workers the head places on it.
using node_agent_actor = caf::typed_actor<
  caf::replies_to<HeartbeatMsg>::with<HeartbeatMsg>,       // the head is alive; answer to prove we are
  caf::replies_to<PlaceWorkerMsg>::with<gpu_worker_actor>, // spawn the gpu_worker of one rank
  caf::reacts_to<ReleaseWorkersMsg>>;                      // stop workers of older group generations

// The head's published join endpoint (actors/node/join_service): the only actor a node reaches first.
using join_service_actor = caf::typed_actor<
  caf::replies_to<JoinHelloMsg>::with<JoinChallengeMsg>,                    // a single-use nonce
  caf::replies_to<JoinRequestMsg, node_agent_actor>::with<JoinReplyMsg>>;  // proof of the token: join

using coordinator_actor = caf::typed_actor<
  caf::replies_to<started_atom>::with<std::uint16_t>,  // reply once every actor is up: the HTTP port
  caf::replies_to<health_atom>::with<HealthMsg>,       // group health
  caf::replies_to<shutdown_atom>::with<MetricsMsg>,    // graceful stop: drain, then quit all actors
  caf::replies_to<topology_atom>::with<scheduler_actor, kv_cache_actor>,   // for tests and tools
  caf::replies_to<topology_atom, std::uint32_t>::with<gpu_worker_actor>,   // worker of rank r
  caf::reacts_to<NodeEventMsg, node_agent_actor>>;                          // (join service) a node came or went

}  // namespace troupe

CAF_BEGIN_TYPE_ID_BLOCK(troupe_actors, caf::id_block::troupe_cluster_last_type_id + 1)
  CAF_ADD_TYPE_ID(troupe_actors, (troupe::token_sink_actor))
  CAF_ADD_TYPE_ID(troupe_actors, (troupe::kv_cache_actor))
  CAF_ADD_TYPE_ID(troupe_actors, (troupe::gpu_worker_actor))
  CAF_ADD_TYPE_ID(troupe_actors, (troupe::scheduler_actor))
  CAF_ADD_TYPE_ID(troupe_actors, (troupe::frontend_actor))
  CAF_ADD_TYPE_ID(troupe_actors, (troupe::coordinator_actor))
  CAF_ADD_TYPE_ID(troupe_actors, (troupe::node_agent_actor))
  CAF_ADD_TYPE_ID(troupe_actors, (troupe::join_service_actor))
CAF_END_TYPE_ID_BLOCK(troupe_actors)

