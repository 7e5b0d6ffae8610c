#include "actors/node/node_entry.hpp"

#include "actors/node/join_auth.hpp"
#include "actors/node/node_agent.hpp"
#include "runtime/actor_system.hpp"

#include <caf/actor_system.hpp>
#include <caf/io/middleman.hpp>
#include <caf/scoped_actor.hpp>
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdio>
#include <ctime>
#include <optional>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace troupe {
namespace {

constexpr std::uint32_t kProtocolVersion = 1;

// True when SIGINT or SIGTERM arrived within `ms` (the signals are blocked: taken here, synchronously).
bool stop_signalled(int ms) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  timespec ts{ms / 1000, (ms % 1000) * 1000000L};
  return sigtimedwait(&set, nullptr, &ts) > 0;
}

// CAF's connect has no timeout of its own: a head behind a dead link would block it for minutes.
// A plain non-blocking connect with a deadline tells first whether anything answers there.
bool tcp_reachable(const std::string& host, std::uint16_t port, double timeout_s) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res) != 0) return false;
  bool ok = false;
  for (auto* ai = res; ai && !ok; ai = ai->ai_next) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0) continue;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
      ok = true;
    } else if (errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      int err = 0;
      socklen_t len = sizeof err;
      ok = poll(&p, 1, static_cast<int>(timeout_s * 1000)) == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 &&
           err == 0;
    }
    close(fd);
  }
  freeaddrinfo(res);
  return ok;
}

JoinRequestMsg join_request(const NodeOptions& o, const std::string& nonce) {
  Digest proof = join_proof(o.token, nonce, o.name);
  return JoinRequestMsg::make([&](schema::JoinRequest::Builder b) {
    b.setNodeName(o.name);
    b.setBackend(o.backend);
    b.setDevices(o.devices);
    b.setNonce(capnp::Data::Reader(reinterpret_cast<const capnp::byte*>(nonce.data()), nonce.size()));
    b.setProof(capnp::Data::Reader(proof.data(), proof.size()));
    b.setProtocolVersion(kProtocolVersion);
  });
}

enum class Outcome { joined, retry, duplicate, fatal };

// One handshake: hello, challenge, proof. On success the agent is watching the head.
Outcome handshake(caf::actor_system& sys, const NodeOptions& o, const join_service_actor& head,
                  const caf::actor& agent, std::chrono::milliseconds& dup_window) {
  caf::scoped_actor self{sys};
  std::string nonce;
  bool ok = false;
  auto hello = JoinHelloMsg::make([&](schema::JoinHello::Builder b) { b.setNodeName(o.name); });
  self->request(head, std::chrono::seconds(5), hello)
    .receive(
      [&](const JoinChallengeMsg& c) {
        auto d = c.view()->getNonce();
        nonce.assign(reinterpret_cast<const char*>(d.begin()), d.size());
        ok = true;
      },
      [&](caf::error& e) { spdlog::warn("join: no challenge from the head: {}", sys.render(e)); });
  if (!ok) return Outcome::retry;
  Outcome out = Outcome::retry;
  self->request(head, std::chrono::seconds(10), join_request(o, nonce), caf::actor_cast<node_agent_actor>(agent))
    .receive(
      [&](const JoinReplyMsg& r) {
        auto v = r.view();
        if (v->getAccepted()) {
          // Tests and scripts wait for this line.
          std::printf("troupe: node '%s' joined %s:%u as slot %u\n", o.name.c_str(), o.host.c_str(), o.port,
                      v->getSlot());
          std::fflush(stdout);
          caf::anon_send(agent, joined_atom::value, v->getHeartbeatTimeoutMs(), caf::actor_cast<caf::actor>(head));
          out = Outcome::joined;
          return;
        }
        spdlog::error("join refused by the head at {}:{}: {}", o.host, o.port, v->getReason().cStr());
        out = v->getRetry() ? Outcome::retry : v->getDuplicate() ? Outcome::duplicate : Outcome::fatal;
        if (out == Outcome::duplicate) dup_window = std::chrono::milliseconds(2 * v->getHeartbeatTimeoutMs());
      },
      [&](caf::error& e) { spdlog::warn("join: no answer from the head: {}", sys.render(e)); });
  return out;
}

}  // namespace

int run_node(const NodeOptions& o) {
  TroupeActorConfig acfg;
  caf::actor_system sys{acfg};
  auto backoff = std::chrono::milliseconds(100);
  auto max_backoff = std::chrono::milliseconds(static_cast<long>(o.max_backoff_s * 1000));
  bool said_unreachable = false;
  std::optional<std::chrono::steady_clock::time_point> first_dup;
  spdlog::info("node '{}' ({} backend) joining {}:{}", o.name, o.backend, o.host, o.port);
  while (true) {
    auto wait = [&] {
      bool stop = stop_signalled(static_cast<int>(backoff.count()));
      backoff = std::min(backoff * 2, max_backoff);
      return stop;
    };
    if (!tcp_reachable(o.host, o.port, o.connect_timeout_s)) {
      if (!said_unreachable) spdlog::warn("the head at {}:{} is not reachable yet; retrying", o.host, o.port);
      said_unreachable = true;
      if (wait()) return 0;
      continue;
    }
    said_unreachable = false;
    auto head = sys.middleman().remote_actor<join_service_actor>(o.host, o.port);
    if (!head) {
      spdlog::warn("cannot reach the join service at {}:{}: {}", o.host, o.port, sys.render(head.error()));
      if (wait()) return 0;
      continue;
    }
    auto session = std::make_shared<NodeSession>();
    auto agent = sys.spawn(node_agent, o.devices, session);
    std::chrono::milliseconds dup_window{0};
    auto outcome = handshake(sys, o, *head, agent, dup_window);
    if (outcome == Outcome::duplicate) {
      // Our own stale slot frees within the head's heartbeat timeout; someone else's never does.
      if (!first_dup) first_dup = std::chrono::steady_clock::now();
      if (std::chrono::steady_clock::now() - *first_dup > dup_window) outcome = Outcome::fatal;
    } else {
      first_dup.reset();
    }
    if (outcome != Outcome::joined) {
      caf::anon_send_exit(agent, caf::exit_reason::user_shutdown);
      if (outcome == Outcome::fatal) {
        spdlog::error("giving up on joining {}:{}", o.host, o.port);
        return 1;
      }
      if (wait()) return 0;
      continue;
    }
    backoff = std::chrono::milliseconds(100);
    while (!session->wait_for(std::chrono::milliseconds(0))) {
      if (stop_signalled(100)) {
        spdlog::info("stopping: leaving the group");
        caf::anon_send_exit(agent, caf::exit_reason::user_shutdown);
        return 0;
      }
    }
    spdlog::warn("lost the head: {}; joining again", session->why());
  }
}

}  // namespace troupe
