#define BOOST_TEST_MODULE sim_actor
#include <boost/test/unit_test.hpp>

#include "actors/gpu_worker/sim_backend.hpp"
#include "tests/sim_harness.hpp"
#include "tests/support/http_client.hpp"

#include <caf/send.hpp>

#include <random>

using namespace troupe;
using namespace troupe::testing;

namespace {
std::vector<std::int32_t> prompt_of(std::mt19937& rng, std::uint32_t len) {
  std::vector<std::int32_t> p(len);
  for (auto& t : p) t = std::int32_t(rng() % 256);
  return p;
}
}  // namespace

// 500 requests of mixed lengths through the whole actor system on 8 sim workers. The KV pool is small
// enough that requests are preempted and resumed along the way.
BOOST_AUTO_TEST_CASE(five_hundred_requests_end_with_exactly_their_tokens_in_order) {
  auto cfg = sim_config(8, 700);
  cfg.max_num_seqs = 64;
  cfg.max_num_batched_tokens = 1024;
  SimCluster c(cfg);
  std::mt19937 rng(1234);
  std::map<std::uint64_t, std::pair<std::vector<std::int32_t>, std::uint32_t>> sent;
  for (std::uint64_t id = 1; id <= 500; ++id) {
    auto p = prompt_of(rng, 1 + rng() % 400);
    std::uint32_t max_tokens = 1 + rng() % 200;
    c.submit(id, p, max_tokens);
    sent[id] = {p, max_tokens};
  }
  BOOST_REQUIRE(c.rec->wait_finished(500, 240));
  std::lock_guard lk(c.rec->mu);
  BOOST_REQUIRE_EQUAL(c.rec->requests.size(), 500u);
  for (auto& [id, r] : c.rec->requests) {
    auto& [prompt, max_tokens] = sent[id];
    BOOST_TEST_CONTEXT("request " << id) {
      BOOST_CHECK(r.finish == schema::FinishReason::LENGTH);
      BOOST_CHECK_EQUAL(r.finish_events, 1);
      BOOST_CHECK(r.contiguous);
      BOOST_REQUIRE_EQUAL(r.tokens.size(), max_tokens);
      // In order: the sim model's token at each position, whatever the batching or preemption was.
      for (std::size_t i = 0; i < r.tokens.size(); ++i)
        BOOST_CHECK_EQUAL(r.tokens[i], SimBackend::token_at(prompt[0], 0, prompt.size() + i));
    }
  }
  auto [free, total] = c.wait_pool_drained(10);
  BOOST_CHECK_EQUAL(free, total);
  caf::scoped_actor self{c.sys};
  self->request(c.sched, std::chrono::seconds(5), metrics_atom::value).receive(
    [](const MetricsMsg& m) {
      BOOST_CHECK_EQUAL(m.view()->getRequestsFinished(), 500u);
      BOOST_CHECK_GT(m.view()->getPreemptionsTotal(), 0u);  // the small pool did force recompute
      BOOST_TEST_MESSAGE("preemptions: " << m.view()->getPreemptionsTotal());
    },
    [](caf::error&) { BOOST_FAIL("no metrics"); });
}

BOOST_AUTO_TEST_CASE(aborts_mid_stream_free_their_blocks) {
  SimCluster c(sim_config(2, 2000));
  std::mt19937 rng(7);
  for (std::uint64_t id = 1; id <= 40; ++id) c.submit(id, prompt_of(rng, 50), 3000);
  for (std::uint64_t id = 1; id <= 40; ++id) BOOST_REQUIRE(c.rec->wait_tokens(id, 2, 30));
  for (std::uint64_t id = 1; id <= 40; ++id) c.abort(id);
  BOOST_REQUIRE(c.rec->wait_finished(40, 30));
  {
    std::lock_guard lk(c.rec->mu);
    for (auto& [id, r] : c.rec->requests) BOOST_CHECK(r.finish == schema::FinishReason::ABORT);
  }
  auto [free, total] = c.wait_pool_drained(10);
  BOOST_CHECK_EQUAL(free, total);
}

BOOST_AUTO_TEST_CASE(a_killed_worker_fails_requests_in_flight_and_health_turns_503) {
  SimCluster c(sim_config(4, 2000));
  BOOST_CHECK_EQUAL(http_request("127.0.0.1", c.port, "GET", "/health").status, 200);
  std::mt19937 rng(9);
  for (std::uint64_t id = 1; id <= 20; ++id) c.submit(id, prompt_of(rng, 30), 3000);
  BOOST_REQUIRE(c.rec->wait_tokens(20, 3, 30));
  caf::anon_send_exit(c.worker(2), caf::exit_reason::kill);
  BOOST_REQUIRE(c.rec->wait_finished(20, 10));  // no hang: every request ends
  {
    std::lock_guard lk(c.rec->mu);
    for (auto& [id, r] : c.rec->requests) {
      BOOST_CHECK(r.finish == schema::FinishReason::ERROR);
      BOOST_CHECK_EQUAL(r.error_status, 503);
    }
  }
  // The rest of the system keeps answering: /health says 503, new requests fail fast.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline &&
         (status = http_request("127.0.0.1", c.port, "GET", "/health").status) != 503)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  BOOST_CHECK_EQUAL(status, 503);
  auto r = http_request("127.0.0.1", c.port, "POST", "/v1/completions", R"({"prompt":"hi","max_tokens":3})");
  BOOST_CHECK_EQUAL(r.status, 503);
  c.submit(99, {1, 2, 3}, 3);
  BOOST_REQUIRE(c.rec->wait_finished(21, 10));
  auto [free, total] = c.wait_pool_drained(10);
  BOOST_CHECK_EQUAL(free, total);
}
