#define BOOST_TEST_MODULE multinode_reform
#include <boost/test/unit_test.hpp>

// A worker that dies while its node stays joined (a crash, not a lost node): the head re-forms the group
// by itself after a heartbeat timeout. The head runs in this process (so the test can reach a worker's
// handle and kill it); the node is a real `troupe node` process.
#include "actors/coordinator/coordinator.hpp"
#include "runtime/actor_system.hpp"
#include "tests/multinode/child.hpp"
#include "tests/support/http_client.hpp"

#include <caf/actor_system.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

using namespace troupe;
using namespace troupe::testing;

namespace {
int health(std::uint16_t port) {
  try {
    return http_request("127.0.0.1", port, "GET", "/health", "", {}, 5).status;
  } catch (const std::exception&) {
    return -1;
  }
}
bool wait_health(std::uint16_t port, int status, double timeout_s) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  while (std::chrono::steady_clock::now() < deadline) {
    if (health(port) == status) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}
}  // namespace

BOOST_AUTO_TEST_CASE(a_crashed_remote_worker_is_replaced_without_a_node_event) {
  auto join_port = free_port();
  Config cfg = parse_config_text("", {"--backend", "sim", "--host", "127.0.0.1", "--port", "0", "--nodes", "2",
                                      "--tensor-parallel-size", "2", "--join-port", std::to_string(join_port),
                                      "--join-token", "t", "--heartbeat-interval-ms", "200",
                                      "--heartbeat-timeout-ms", "1000", "--log-level", "warn"});
  TroupeActorConfig acfg;
  caf::actor_system sys{acfg};
  auto coord = sys.spawn(coordinator, cfg);
  // However the test ends, the head shuts down (else the actor system would wait for it forever).
  struct Stop {
    caf::actor_system& sys;
    coordinator_actor coord;
    ~Stop() {
      caf::scoped_actor s{sys};
      s->request(coord, std::chrono::seconds(20), shutdown_atom::value).receive([](const MetricsMsg&) {}, [](caf::error&) {});
    }
  } stop{sys, coord};
  Child node({troupe_binary(), "node", "--join", "127.0.0.1:" + std::to_string(join_port), "--join-token", "t",
              "--backend", "sim", "--node-name", "n1"});
  caf::scoped_actor self{sys};
  std::uint16_t port = 0;
  self->request(coord, std::chrono::seconds(30), started_atom::value)
    .receive([&](std::uint16_t p) { port = p; }, [&](caf::error& e) { BOOST_FAIL("no start: " << sys.render(e)); });
  BOOST_REQUIRE_EQUAL(health(port), 200);
  gpu_worker_actor remote;
  self->request(coord, std::chrono::seconds(5), topology_atom::value, std::uint32_t{1})
    .receive([&](gpu_worker_actor w) { remote = w; }, [&](caf::error& e) { BOOST_FAIL(sys.render(e)); });
  BOOST_REQUIRE(remote);
  BOOST_CHECK(remote.node() != sys.node());  // rank 1 lives on the node
  // What a crash looks like (an exception escaping the worker), not `kill`, which no actor can trap.
  caf::anon_send_exit(remote, caf::exit_reason::unhandled_exception);
  BOOST_CHECK(wait_health(port, 503, 3));
  BOOST_CHECK(node.wait_for(std::regex("gpu worker of rank 1 exited"), 3));
  BOOST_CHECK(node.running());  // the agent survived its worker
  BOOST_REQUIRE(wait_health(port, 200, 10));
  BOOST_CHECK(node.wait_for(std::regex("placed gpu worker of rank 1 \\(group generation [3-9]"), 3));
  auto r = http_request("127.0.0.1", port, "POST", "/v1/completions", R"({"prompt":"hi","max_tokens":5})",
                        {{"content-type", "application/json"}}, 30);
  BOOST_CHECK_EQUAL(r.status, 200);
}
