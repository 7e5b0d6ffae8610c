#define BOOST_TEST_MODULE multinode
#include <boost/test/unit_test.hpp>

// A head and worker-node processes of the real binary on this machine: loopback for most tests, a
// network namespace behind a veth pair for the partition. Heartbeats are fast (200 ms, lost after 1 s)
// so losses show within a few seconds.
#include "tests/multinode/child.hpp"
#include "tests/support/http_client.hpp"

#include <csignal>
#include <cstdlib>
#include <memory>
#include <unistd.h>

using namespace troupe::testing;
using Clock = std::chrono::steady_clock;

namespace {

const std::string kToken = "multinode-test-secret";
constexpr double kHeartbeatTimeoutS = 1.0;

double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

struct Head {
  std::unique_ptr<Child> proc;
  std::uint16_t port = 0;
};

std::vector<std::string> head_argv(int nodes, int tp, std::uint16_t join_port, std::vector<std::string> extra = {}) {
  std::vector<std::string> a{troupe_binary(), "serve", "--backend", "sim", "--host", "127.0.0.1", "--port", "0",
                             "--nodes", std::to_string(nodes), "--tensor-parallel-size", std::to_string(tp),
                             "--join-port", std::to_string(join_port), "--join-token", kToken,
                             "--heartbeat-interval-ms", "200", "--heartbeat-timeout-ms", "1000",
                             "--node-timeout-seconds", "30", "--max-model-len", "32768", "--sim-step-us", "1000"};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

// Starts a head and waits for its "serving" line (which comes once every node has joined: start the
// nodes first, or right after, as they retry).
Head start_head(std::vector<std::string> argv, std::function<void()> then_start_nodes = {}) {
  Head h;
  h.proc = std::make_unique<Child>(std::move(argv));
  if (then_start_nodes) then_start_nodes();
  auto m = h.proc->wait_for(std::regex(R"(serving .* on http://127\.0\.0\.1:(\d+))"), 60);
  BOOST_REQUIRE_MESSAGE(m, "the head did not start serving:\n" + h.proc->output());
  h.port = static_cast<std::uint16_t>(std::stoi((*m)[1]));
  return h;
}

std::unique_ptr<Child> start_node(const std::string& name, const std::string& join, std::vector<std::string> prefix = {},
                                  const std::string& token = kToken) {
  std::vector<std::string> a = prefix;
  for (auto s : {troupe_binary(), std::string("node"), std::string("--join"), join, std::string("--join-token"), token,
                 std::string("--backend"), std::string("sim"), std::string("--node-name"), name})
    a.push_back(s);
  return std::make_unique<Child>(a);
}

std::string join_at(std::uint16_t port) { return "127.0.0.1:" + std::to_string(port); }

int health(std::uint16_t port) {
  try {
    return http_request("127.0.0.1", port, "GET", "/health", "", {}, 5).status;
  } catch (const std::exception&) {
    return -1;
  }
}

// Polls /health until it answers `status`; returns the seconds it took, or -1.
double wait_health(std::uint16_t port, int status, double timeout_s) {
  auto t0 = Clock::now();
  while (since(t0) < timeout_s) {
    if (health(port) == status) return since(t0);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return -1;
}

HttpResponse complete(std::uint16_t port, int max_tokens, bool stream) {
  std::string body = R"({"prompt":"Once upon a time","max_tokens":)" + std::to_string(max_tokens) +
                     (stream ? R"(,"stream":true})" : "}");
  return http_request("127.0.0.1", port, "POST", "/v1/completions", body, {{"content-type", "application/json"}}, 60);
}

void check_requests_complete(std::uint16_t port) {
  auto whole = complete(port, 24, false);
  BOOST_CHECK_EQUAL(whole.status, 200);
  BOOST_CHECK(whole.body.find("\"completion_tokens\":24") != std::string::npos);
  auto streamed = complete(port, 24, true);
  BOOST_CHECK_EQUAL(streamed.status, 200);
  auto events = sse_events(streamed.body);
  BOOST_REQUIRE(!events.empty());
  BOOST_CHECK_EQUAL(events.back(), "[DONE]");
  BOOST_CHECK(streamed.body.find("\"finish_reason\":\"length\"") != std::string::npos);
  BOOST_CHECK(streamed.body.find("error") == std::string::npos);
}

// Long streams (each would run ~20 s) that have produced their first tokens.
std::vector<std::unique_ptr<HttpStream>> open_streams(std::uint16_t port, int n) {
  std::vector<std::unique_ptr<HttpStream>> out;
  for (int i = 0; i < n; ++i) {
    out.push_back(std::make_unique<HttpStream>("127.0.0.1", port, "POST", "/v1/completions",
                                               R"({"prompt":"Tell me","max_tokens":20000,"stream":true})"));
    BOOST_REQUIRE_EQUAL(out.back()->status(10), 200);
  }
  for (auto& s : out) BOOST_REQUIRE(s->next_chunk(10).has_value());
  return out;
}

// Reads every stream to its end; each must end with an error event within `limit_s` of `t0`.
void expect_streams_fail(std::vector<std::unique_ptr<HttpStream>>& streams, Clock::time_point t0, double limit_s) {
  for (auto& s : streams) {
    std::string rest;
    while (auto c = s->next_chunk(std::max(0.1, limit_s - since(t0)))) rest += *c;
    BOOST_CHECK_MESSAGE(!s->timed_out(), "a stream was still open " << since(t0) << " s after the loss");
    BOOST_CHECK_MESSAGE(rest.find("\"error\"") != std::string::npos, "the stream ended without an error event");
    BOOST_CHECK(rest.find("ServiceUnavailableError") != std::string::npos);
  }
  BOOST_CHECK_LE(since(t0), limit_s);
}

// Runs a shell command; its exit status.
int sh(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()); }

}  // namespace

BOOST_AUTO_TEST_CASE(head_and_two_nodes_serve_one_group) {
  auto join_port = free_port();
  std::unique_ptr<Child> a, b;
  // tensor-parallel-size 6 over 3 nodes: ranks 0-1 on the head, 2-3 and 4-5 on the nodes.
  auto head = start_head(head_argv(3, 6, join_port), [&] {
    a = start_node("node-a", join_at(join_port));
    b = start_node("node-b", join_at(join_port));
  });
  BOOST_REQUIRE(a->wait_for(std::regex("placed gpu worker of rank (2|4)"), 5));
  BOOST_REQUIRE(b->wait_for(std::regex("placed gpu worker of rank (3|5)"), 5));
  BOOST_CHECK_EQUAL(health(head.port), 200);
  check_requests_complete(head.port);
  // Many requests at once through the spread group.
  std::vector<std::thread> clients;
  std::atomic<int> ok{0};
  for (int i = 0; i < 8; ++i)
    clients.emplace_back([&, i] { ok += complete(head.port, 32, i % 2 == 0).status == 200; });
  for (auto& t : clients) t.join();
  BOOST_CHECK_EQUAL(ok.load(), 8);
  BOOST_CHECK_EQUAL(head.proc->wait(0), -1);
  head.proc->signal(SIGTERM);
  BOOST_CHECK_EQUAL(head.proc->wait(20), 0);
  // A node stops cleanly too, joined or (after the head went) retrying.
  a->signal(SIGTERM);
  BOOST_CHECK_EQUAL(a->wait(10), 0);
  b->signal(SIGINT);
  BOOST_CHECK_EQUAL(b->wait(10), 0);
}

BOOST_AUTO_TEST_CASE(a_killed_node_fails_its_streams_and_the_group_recovers_when_it_returns) {
  auto join_port = free_port();
  std::unique_ptr<Child> a, b;
  auto head = start_head(head_argv(3, 6, join_port), [&] {
    a = start_node("node-a", join_at(join_port));
    b = start_node("node-b", join_at(join_port));
  });
  auto streams = open_streams(head.port, 6);
  auto t0 = Clock::now();
  a->signal(SIGKILL);
  expect_streams_fail(streams, t0, kHeartbeatTimeoutS + 2);
  BOOST_CHECK_GE(wait_health(head.port, 503, 3), 0);
  BOOST_CHECK(head.proc->running());  // the head stays up and answers
  auto refused = complete(head.port, 4, false);
  BOOST_CHECK_EQUAL(refused.status, 503);
  // The node comes back (a new process, same name: its old slot is free by now).
  a = start_node("node-a", join_at(join_port));
  double back = wait_health(head.port, 200, 20);
  BOOST_REQUIRE_MESSAGE(back >= 0, "the group did not recover:\n" + head.proc->output());
  check_requests_complete(head.port);
  BOOST_CHECK(head.proc->saw("worker group whole again"));
}

BOOST_AUTO_TEST_CASE(wrong_secret_and_duplicate_name_are_refused_without_a_hang) {
  auto join_port = free_port();
  std::unique_ptr<Child> a;
  auto head = start_head(head_argv(2, 2, join_port), [&] { a = start_node("node-a", join_at(join_port)); });
  auto wrong = start_node("intruder", join_at(join_port), {}, "not-the-secret");
  BOOST_CHECK_EQUAL(wrong->wait(15), 1);
  BOOST_CHECK(wrong->saw("wrong join token"));
  BOOST_CHECK(head.proc->wait_for(std::regex("join refused for node 'intruder'.*wrong join token"), 5));
  BOOST_CHECK(!head.proc->saw("not-the-secret"));  // neither secret is ever logged
  BOOST_CHECK(!head.proc->saw(kToken));
  auto twin = start_node("node-a", join_at(join_port));
  BOOST_CHECK_EQUAL(twin->wait(15), 1);
  BOOST_CHECK(twin->saw("already joined"));
  // The live node keeps its slot and the service keeps serving.
  BOOST_CHECK_EQUAL(health(head.port), 200);
  check_requests_complete(head.port);
  BOOST_CHECK(a->running());
}

BOOST_AUTO_TEST_CASE(startup_names_the_missing_nodes_when_they_do_not_come) {
  auto join_port = free_port();
  Child head(head_argv(3, 6, join_port, {"--node-timeout-seconds", "2"}));
  auto a = start_node("node-a", join_at(join_port));
  BOOST_CHECK_EQUAL(head.wait(20), 1);
  BOOST_CHECK(head.saw("missing node slot 2 (ranks 4-5)"));
  BOOST_CHECK(head.saw("node-timeout-seconds"));
}

BOOST_AUTO_TEST_CASE(nodes_rejoin_a_head_that_restarts) {
  auto join_port = free_port();
  std::unique_ptr<Child> a, b;
  auto head = start_head(head_argv(3, 6, join_port), [&] {
    a = start_node("node-a", join_at(join_port));
    b = start_node("node-b", join_at(join_port));
  });
  check_requests_complete(head.port);
  auto a_mark = a->output_size(), b_mark = b->output_size();
  head.proc->signal(SIGKILL);
  BOOST_CHECK_EQUAL(head.proc->wait(10), 128 + SIGKILL);
  BOOST_CHECK(a->wait_for(std::regex("lost the head"), 5, a_mark));
  auto head2 = start_head(head_argv(3, 6, join_port));
  BOOST_CHECK(a->wait_for(std::regex("joined .* as slot"), 10, a_mark));
  BOOST_CHECK(b->wait_for(std::regex("joined .* as slot"), 10, b_mark));
  check_requests_complete(head2.port);
  BOOST_CHECK(a->running());
  BOOST_CHECK(b->running());
}

// A partition: the node runs in its own network namespace, reached over a veth pair; taking the link
// down cuts it off silently (no FIN, no RST), so only the heartbeats can tell.
BOOST_AUTO_TEST_CASE(a_partitioned_node_is_detected_and_recovers_when_the_link_returns) {
  std::string id = std::to_string(getpid() % 100000);
  std::string ns = "trp-mn-" + id, vh = "trph" + id, vn = "trpn" + id;
  std::string head_ip = "10.213.7.1", node_ip = "10.213.7.2";
  sh("ip netns del " + ns);
  int rc = sh("ip netns add " + ns);
  BOOST_REQUIRE_MESSAGE(rc == 0, "cannot create a network namespace (this test needs root or CAP_NET_ADMIN and "
                                 "iproute2): `ip netns add` failed; the partition test did NOT run");
  struct Cleanup {
    std::string ns, vh;
    ~Cleanup() {
      sh("ip link del " + vh);
      sh("ip netns del " + ns);
    }
  } cleanup{ns, vh};
  for (std::string cmd : {"ip link add " + vh + " type veth peer name " + vn, "ip link set " + vn + " netns " + ns,
                          "ip addr add " + head_ip + "/24 dev " + vh, "ip link set " + vh + " up",
                          "ip netns exec " + ns + " ip addr add " + node_ip + "/24 dev " + vn,
                          "ip netns exec " + ns + " ip link set " + vn + " up",
                          "ip netns exec " + ns + " ip link set lo up"})
    BOOST_REQUIRE_MESSAGE(sh(cmd) == 0, "network setup failed: " + cmd);

  auto join_port = free_port();
  std::string join = head_ip + ":" + std::to_string(join_port);
  std::unique_ptr<Child> n;
  auto head = start_head(head_argv(2, 2, join_port, {"--join-host", head_ip}),
                         [&] { n = start_node("node-ns", join, {"ip", "netns", "exec", ns}); });
  check_requests_complete(head.port);
  // The join port listens on the configured address only.
  auto probe = start_node("probe", join_at(join_port));
  BOOST_CHECK(probe->wait_for(std::regex("not reachable"), 5));

  auto streams = open_streams(head.port, 4);
  auto mark = n->output_size();
  auto t0 = Clock::now();
  BOOST_REQUIRE(sh("ip link set " + vh + " down") == 0);
  double lost = wait_health(head.port, 503, kHeartbeatTimeoutS + 3);
  BOOST_CHECK_MESSAGE(lost >= 0, "the head did not notice the partition");
  BOOST_TEST_MESSAGE("partition detected after " << since(t0) << " s");
  expect_streams_fail(streams, t0, kHeartbeatTimeoutS + 3);
  // Our heartbeats or CAF's connection timeout (set to the same bound) name the loss, whichever is first.
  BOOST_CHECK(head.proc->wait_for(std::regex("node 'node-ns' \\(slot 1\\) lost: (no heartbeat answer|connection closed)"), 1));
  BOOST_CHECK(n->wait_for(std::regex("lost the head"), 5, mark));  // the node noticed too, and retries

  BOOST_REQUIRE(sh("ip link set " + vh + " up") == 0);
  double back = wait_health(head.port, 200, 30);
  BOOST_REQUIRE_MESSAGE(back >= 0, "no recovery after the link returned:\nhead:\n" + head.proc->output() +
                                     "\nnode:\n" + n->output());
  check_requests_complete(head.port);
  head.proc->signal(SIGTERM);
  BOOST_CHECK_EQUAL(head.proc->wait(20), 0);
  BOOST_TEST_MESSAGE("head:\n" << head.proc->output() << "\nnode:\n" << n->output());
}
