#include "actors/node/join_service.hpp"

#include "actors/node/join_auth.hpp"
#include "actors/node/membership.hpp"

#include <caf/actor_system.hpp>
#include <caf/send.hpp>
#include <spdlog/spdlog.h>

#include <deque>
#include <map>

namespace troupe {
namespace {

using Clock = std::chrono::steady_clock;
using tick_atom = caf::atom_constant<caf::atom("hb_tick")>;
using deadline_atom = caf::atom_constant<caf::atom("join_wait")>;
constexpr std::uint32_t kProtocolVersion = 1;
constexpr std::size_t kMaxOpenNonces = 256;  // a flood of hellos cannot grow memory without bound

std::string view_text(capnp::Data::Reader d) { return std::string(reinterpret_cast<const char*>(d.begin()), d.size()); }

struct JoinState {
  JoinState(JoinServiceOptions o, coordinator_actor c)
    : opts(std::move(o)),
      coord(std::move(c)),
      members(opts.nodes, opts.backend, opts.ranks_per_node, opts.heartbeat_timeout),
      agents(opts.nodes) {}
  JoinServiceOptions opts;
  coordinator_actor coord;
  Membership members;
  std::vector<node_agent_actor> agents;      // by slot
  std::deque<std::pair<std::string, Clock::time_point>> nonces;  // open challenges, oldest first
  std::uint64_t seq = 0;
  bool ever_complete = false;
};
using StatePtr = std::shared_ptr<JoinState>;

bool take_nonce(JoinState& st, const std::string& nonce) {
  auto now = Clock::now();
  for (auto it = st.nonces.begin(); it != st.nonces.end(); ++it) {
    if (!equal_constant_time(it->first, nonce)) continue;
    bool fresh = now - it->second < std::chrono::seconds(60);
    st.nonces.erase(it);  // single use, fresh or not
    return fresh;
  }
  return false;
}

JoinReplyMsg reply(const JoinState& st, const Membership::Admission& a) {
  return JoinReplyMsg::make([&](schema::JoinReply::Builder b) {
    b.setAccepted(a.accepted);
    b.setReason(a.reason);
    b.setRetry(a.retry);
    b.setDuplicate(a.duplicate);
    b.setSlot(a.slot);
    b.setHeartbeatIntervalMs(static_cast<std::uint32_t>(st.opts.heartbeat_interval.count()));
    b.setHeartbeatTimeoutMs(static_cast<std::uint32_t>(st.opts.heartbeat_timeout.count()));
  });
}

void lose(caf::event_based_actor* self, JoinState& st, std::uint32_t slot, const std::string& why) {
  std::string name = st.members.live(slot) ? st.members.name(slot) : "?";
  st.members.release(slot);
  if (st.agents[slot]) self->demonitor(st.agents[slot].address());
  st.agents[slot] = nullptr;
  spdlog::error("node '{}' ({}) lost: {}", name, st.members.describe_slot(slot), why);
  caf::anon_send(st.coord, node_event(schema::NodeEvent::Kind::LOST, slot, name, why), node_agent_actor{});
}

JoinReplyMsg handle_join(caf::event_based_actor* self, const StatePtr& stp, const JoinRequestMsg& msg,
                         const node_agent_actor& agent) {
  auto& st = *stp;
  auto v = msg.view();
  std::string name = v->getNodeName();
  std::string nonce = view_text(v->getNonce());
  Digest expect = join_proof(st.opts.token, nonce, name);
  bool proof_ok = take_nonce(st, nonce) && agent &&
                  equal_constant_time(view_text(v->getProof()),
                                      std::string_view(reinterpret_cast<const char*>(expect.data()), expect.size()));
  Membership::Admission a;
  if (v->getProtocolVersion() != kProtocolVersion)
    a.reason = "protocol version " + std::to_string(v->getProtocolVersion()) + ", the head speaks " +
               std::to_string(kProtocolVersion);
  else
    a = st.members.admit(proof_ok, name, v->getBackend(), v->getDevices(), Clock::now());
  std::string from = self->current_sender() ? caf::to_string(self->current_sender()->node()) : "?";
  if (!a.accepted) {
    spdlog::warn("join refused for node '{}' (from {}): {}", name, from, a.reason);
    return reply(st, a);
  }
  st.agents[a.slot] = agent;
  self->monitor(agent);
  spdlog::info("node '{}' joined as {}", name, st.members.describe_slot(a.slot));
  caf::anon_send(st.coord, node_event(schema::NodeEvent::Kind::JOINED, a.slot, name, ""), agent);
  if (st.members.missing_slots().empty()) st.ever_complete = true;
  return reply(st, a);
}

void heartbeat(caf::event_based_actor* self, const StatePtr& stp) {
  auto& st = *stp;
  auto hb = HeartbeatMsg::make([&](schema::Heartbeat::Builder b) {
    b.setSeq(++st.seq);
    b.setSentNs(Clock::now().time_since_epoch().count());
  });
  for (auto slot : st.members.live_slots()) {
    auto agent = st.agents[slot];
    self->request(agent, st.opts.heartbeat_timeout, hb)
      .then(
        [stp, slot, agent](const HeartbeatMsg&) {
          if (stp->agents[slot] == agent) stp->members.seen(slot, Clock::now());
        },
        [](caf::error&) {});  // silence is judged by expire() below, one rule for every way of going quiet
  }
  std::vector<std::string> names(st.agents.size());
  for (auto slot : st.members.live_slots()) names[slot] = st.members.name(slot);
  for (auto slot : st.members.expire(Clock::now())) {  // expire() frees the slot
    std::string why = "no heartbeat answer for " + std::to_string(st.opts.heartbeat_timeout.count()) + " ms";
    spdlog::error("node '{}' ({}) lost: {}", names[slot], st.members.describe_slot(slot), why);
    if (st.agents[slot]) self->demonitor(st.agents[slot].address());
    st.agents[slot] = nullptr;
    caf::anon_send(st.coord, node_event(schema::NodeEvent::Kind::LOST, slot, names[slot], why), node_agent_actor{});
  }
}

}  // namespace

NodeEventMsg node_event(schema::NodeEvent::Kind kind, std::uint32_t slot, const std::string& name,
                        const std::string& reason) {
  return NodeEventMsg::make([&](schema::NodeEvent::Builder b) {
    b.setKind(kind);
    b.setSlot(slot);
    b.setNodeName(name);
    b.setReason(reason);
  });
}

caf::behavior join_service(caf::event_based_actor* self, JoinServiceOptions opts, coordinator_actor coordinator) {
  auto stp = std::make_shared<JoinState>(std::move(opts), std::move(coordinator));
  self->set_down_handler([self, stp](caf::down_msg& dm) {
    for (std::uint32_t s = 1; s < stp->agents.size(); ++s)
      if (stp->agents[s] && stp->agents[s].address() == dm.source)
        lose(self, *stp, s, "connection closed (" + caf::to_string(dm.reason) + ")");
  });
  self->send(self, tick_atom::value);
  self->delayed_send(self, stp->opts.startup_timeout, deadline_atom::value);
  return {
    [stp](const JoinHelloMsg&) -> JoinChallengeMsg {
      auto nonce = random_bytes(32);
      if (stp->nonces.size() >= kMaxOpenNonces) stp->nonces.pop_front();
      stp->nonces.emplace_back(nonce, Clock::now());
      return JoinChallengeMsg::make([&](schema::JoinChallenge::Builder b) {
        b.setNonce(capnp::Data::Reader(reinterpret_cast<const capnp::byte*>(nonce.data()), nonce.size()));
      });
    },
    [self, stp](const JoinRequestMsg& msg, const node_agent_actor& agent) -> JoinReplyMsg {
      return handle_join(self, stp, msg, agent);
    },
    [self, stp](tick_atom) {
      heartbeat(self, stp);
      self->delayed_send(self, stp->opts.heartbeat_interval, tick_atom::value);
    },
    [self, stp](deadline_atom) {
      if (stp->ever_complete) return;
      std::string missing;
      for (auto s : stp->members.missing_slots())
        missing += (missing.empty() ? "" : ", ") + stp->members.describe_slot(s);
      auto secs = std::chrono::duration<double>(stp->opts.startup_timeout).count();
      caf::anon_send(stp->coord,
                     node_event(schema::NodeEvent::Kind::TIMED_OUT, 0, "",
                                "worker nodes did not join within node-timeout-seconds (" + fmt::format("{:g}", secs) +
                                  " s): missing node " + missing),
                     node_agent_actor{});
    },
  };
}

}  // namespace troupe
