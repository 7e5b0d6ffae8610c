@0xa7b32f6eeddd2153;
# The messages between a head (`troupe serve --nodes N`) and its worker nodes (`troupe node --join`).
# Like messages.capnp, each struct travels in the Msg<S> envelope (runtime/schema/envelope.hpp).
#
# Joining, in order:
#   node -> head  JoinHello                 (who I am)
#   head -> node  JoinChallenge             (a fresh single-use nonce)
#   node -> head  JoinRequest + agent       (proof = HMAC-SHA256(join-token, nonce || nodeName); the
#                                            token itself never travels)
#   head -> node  JoinReply                 (accepted with a slot and the heartbeat timing, or why not)
# Then the head sends Heartbeat requests to the node's agent; PlaceWorker asks the agent for one
# gpu_worker per rank the node hosts, and ReleaseWorkers drops them when the group re-forms.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("troupe::schema");

struct JoinHello {
  nodeName @0 :Text;
}

struct JoinChallenge {
  nonce @0 :Data;                  # 32 random bytes, valid for one JoinRequest
}

struct JoinRequest {
  nodeName @0 :Text;               # unique within the group while joined
  backend @1 :Text;                # must equal the head's backend
  devices @2 :UInt32;              # 0 = as many as the head places (sim, cpu)
  nonce @3 :Data;                  # the challenge's nonce
  proof @4 :Data;                  # HMAC-SHA256(join-token, nonce || nodeName)
  protocolVersion @5 :UInt32;
}

struct JoinReply {
  accepted @0 :Bool;
  reason @1 :Text;                 # why not (accepted = false)
  retry @2 :Bool;                  # a refusal that may pass later (group full, head still starting)
  slot @3 :UInt32;                 # node slot 1..nodes-1 (the head is slot 0)
  heartbeatIntervalMs @4 :UInt32;
  heartbeatTimeoutMs @5 :UInt32;   # the node presumes the head lost after this long without a heartbeat
  duplicate @6 :Bool;              # refused: a node of this name holds a live slot. If it is this node's own
                                   # stale slot (the head has not noticed its loss yet), it frees within the
                                   # heartbeat timeout: the node retries for twice that long, then gives up.
}

struct Heartbeat {
  seq @0 :UInt64;
  sentNs @1 :Int64;                # the sender's steady clock
}

# The channel that carries a tensor-parallel group's NCCL unique id (ncclUniqueId: 128 bytes) to every
# rank. The head sends it with each PlaceWorker; the node keeps the latest one per group generation.
struct NcclUniqueId {
  groupId @0 :UInt64;
  generation @1 :UInt64;           # bumps each time the group re-forms (a new communicator)
  id @2 :Data;                     # 128 bytes
}

# head -> node agent: spawn the gpu_worker of one rank (answered with its handle).
struct PlaceWorker {
  rank @0 :UInt32;
  worldSize @1 :UInt32;
  generation @2 :UInt64;
  ncclId @3 :NcclUniqueId;
}

# head -> node agent: stop the workers of older generations (the group is re-forming).
struct ReleaseWorkers {
  generation @0 :UInt64;           # workers placed for generations below this one stop
  reason @1 :Text;
}

# join service -> coordinator (inside the head): a node slot changed.
struct NodeEvent {
  enum Kind {
    joined @0;
    lost @1;
    timedOut @2;                   # startup waited node-timeout-seconds; reason names the missing slots
    reform @3;                     # (coordinator to itself) try forming again after a worker exited
  }
  kind @0 :Kind;
  slot @1 :UInt32;
  nodeName @2 :Text;
  reason @3 :Text;                 # lost: heartbeat timeout, connection closed, ...
}
