#include "tests/sim_harness.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>

#include <chrono>
#include <stdexcept>
#include <thread>

namespace troupe::testing {

void Recorder::record(const TokenEventsMsg& msg) {
  std::lock_guard lk(mu);
  auto v = msg.view();  // named: readers point into the View, which must outlive them
  for (auto ev : v->getEvents()) {
    auto& r = requests[ev.getRequestId()];
    if (ev.getFirstIndex() != r.tokens.size()) r.contiguous = false;
    for (auto t : ev.getTokens()) r.tokens.push_back(t);
    if (ev.getFinishReason() != schema::FinishReason::NONE) {
      r.finish = ev.getFinishReason();
      r.error_status = ev.getErrorStatus();
      r.message = ev.getMessage().cStr();
      if (r.finish_events++ == 0) ++finished;
    }
  }
  cv.notify_all();
}

bool Recorder::wait_finished(std::size_t n, double timeout_s) {
  std::unique_lock lk(mu);
  return cv.wait_for(lk, std::chrono::duration<double>(timeout_s), [&] { return finished >= n; });
}

bool Recorder::wait_tokens(std::uint64_t id, std::size_t k, double timeout_s) {
  std::unique_lock lk(mu);
  return cv.wait_for(lk, std::chrono::duration<double>(timeout_s), [&] {
    auto it = requests.find(id);
    return it != requests.end() && it->second.tokens.size() >= k;
  });
}

Config sim_config(int tp, int num_blocks) {
  Config c;
  c.backend = "sim";
  c.tensor_parallel_size = tp;
  c.host = "127.0.0.1";
  c.port = 0;
  c.num_gpu_blocks_override = num_blocks;
  c.sim.step_us = 100;
  c.sim.prefill_token_us = 0.05;
  c.sim.decode_seq_us = 2;
  c.log_level = "warn";
  return c;
}

SimCluster::SimCluster(Config cfg) : acfg(2), sys(acfg) {
  coord = sys.spawn(coordinator, cfg);
  caf::scoped_actor self{sys};
  self->request(coord, std::chrono::seconds(30), started_atom::value)
    .receive([&](std::uint16_t p) { port = p; },
             [&](caf::error& e) { throw std::runtime_error("cluster failed to start: " + sys.render(e)); });
  self->request(coord, std::chrono::seconds(5), topology_atom::value)
    .receive(
      [&](scheduler_actor s, kv_cache_actor k) {
        sched = s;
        kv = k;
      },
      [&](caf::error& e) { throw std::runtime_error("no topology: " + sys.render(e)); });
  auto r = rec;
  sink = sys.spawn([r]() -> token_sink_actor::behavior_type {
    return {[r](const TokenEventsMsg& m) { r->record(m); }};
  });
}

SimCluster::~SimCluster() {
  caf::anon_send_exit(sink, caf::exit_reason::user_shutdown);
  caf::scoped_actor self{sys};
  self->request(coord, std::chrono::seconds(60), shutdown_atom::value).receive([](const MetricsMsg&) {},
                                                                              [](caf::error&) {});
}

void SimCluster::submit(std::uint64_t id, const std::vector<std::int32_t>& prompt, std::uint32_t max_tokens) {
  caf::anon_send(sched,
                 SubmitMsg::make([&](schema::SubmitRequest::Builder b) {
                   b.setRequestId(id);
                   auto t = b.initPromptTokens(static_cast<unsigned>(prompt.size()));
                   for (unsigned i = 0; i < prompt.size(); ++i) t.set(i, prompt[i]);
                   b.initSampling().setMaxTokens(max_tokens);
                 }),
                 sink);
}

void SimCluster::submit_greedy(std::uint64_t id, const std::vector<std::int32_t>& prompt, std::uint32_t max_tokens) {
  caf::anon_send(sched,
                 SubmitMsg::make([&](schema::SubmitRequest::Builder b) {
                   b.setRequestId(id);
                   auto t = b.initPromptTokens(static_cast<unsigned>(prompt.size()));
                   for (unsigned i = 0; i < prompt.size(); ++i) t.set(i, prompt[i]);
                   auto s = b.initSampling();
                   s.setMaxTokens(max_tokens);
                   s.setTemperature(0.0f);
                   s.setIgnoreEos(true);
                 }),
                 sink);
}

void SimCluster::abort(std::uint64_t id) {
  caf::anon_send(sched, AbortMsg::make([&](schema::AbortRequest::Builder b) {
                   b.setRequestId(id);
                   b.setReason("test abort");
                 }));
}

std::pair<std::uint32_t, std::uint32_t> SimCluster::wait_pool_drained(double timeout_s) {
  caf::scoped_actor self{sys};
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  std::pair<std::uint32_t, std::uint32_t> last{0, 1};
  while (std::chrono::steady_clock::now() < deadline) {
    self->request(kv, std::chrono::seconds(5), metrics_atom::value)
      .receive([&](const MetricsMsg& m) { last = {m.view()->getKvBlocksFree(), m.view()->getKvBlocksTotal()}; },
               [&](caf::error&) {});
    if (last.first == last.second) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return last;
}

gpu_worker_actor SimCluster::worker(std::uint32_t rank) {
  caf::scoped_actor self{sys};
  gpu_worker_actor w;
  self->request(coord, std::chrono::seconds(5), topology_atom::value, rank)
    .receive([&](gpu_worker_actor a) { w = a; }, [&](caf::error&) {});
  return w;
}

}  // namespace troupe::testing
