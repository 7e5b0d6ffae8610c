#include "actors/http_frontend/frontend_actor.hpp"

#include <caf/actor_cast.hpp>
#include <caf/send.hpp>
#include <spdlog/spdlog.h>

#include <sys/resource.h>

#include <chrono>
#include <thread>
#include <utility>
#include <vector>

namespace troupe {
namespace {

std::int64_t steady_ns() { return std::chrono::steady_clock::now().time_since_epoch().count(); }

// Runs on the request's strand: event `index` of one step's message through its context. Each strand task
// reads the shared message words through its own capnp reader (readers are not shared across threads).
void format_event(FrontendShared& sh, RequestContext& ctx, const TokenEventsMsg& msg, unsigned index) {
  auto t0 = steady_ns();
  auto v = msg.view();
  auto ev = v->getEvents()[index];
  auto outcome = ctx.on_event(ev);
  // A stop string ended a choice here, or a sibling failed: the engine still thinks they run.
  for (auto id : outcome.abort_ids) send_abort(sh, id, "finished by the frontend");
  if (outcome.done) {
    std::lock_guard lk(sh.mu);
    for (std::uint32_t i = 0; i < ctx.n(); ++i) sh.live.erase(ctx.base_id() + i);
  }
  auto t1 = steady_ns();
  if (auto n = ev.getTokens().size()) {
    sh.token_cost.record_ns((t1 - t0) / std::int64_t(n), n);
    if (v->getSentNs() > 0) sh.token_latency.record_ns(t1 - v->getSentNs(), n);
  }
}

// The actor only routes: one registry lock per step, then each event goes to its connection's strand.
// The strands run on the HTTP threads, so a step's 1000 requests are formatted in parallel, and none waits
// for the others' JSON. Per request the order holds: this actor posts in step order, a strand runs FIFO.
void deliver(const std::shared_ptr<FrontendShared>& shp, const TokenEventsMsg& msg) {
  auto& sh = *shp;
  auto t0 = steady_ns();
  auto v = msg.view();
  auto events = v->getEvents();
  std::vector<std::pair<FrontendShared::Live, unsigned>> routed;
  routed.reserve(events.size());
  std::uint64_t tokens = 0;
  {
    std::lock_guard lk(sh.mu);
    for (unsigned i = 0; i < events.size(); ++i) {
      auto it = sh.live.find(events[i].getRequestId());
      if (it == sh.live.end()) continue;  // finished or failed already: late tokens are dropped
      routed.emplace_back(it->second, i);
      tokens += events[i].getTokens().size();
    }
  }
  for (auto& [live, i] : routed)
    live.out->run([shp, ctx = live.ctx, msg, i = i] { format_event(*shp, *ctx, msg, i); });
  if (tokens > 0) sh.route_cost.record_ns((steady_ns() - t0) / std::int64_t(tokens), tokens);
}

}  // namespace

frontend_actor::behavior_type http_frontend(frontend_actor::pointer self, FrontendOptions opts,
                                            scheduler_actor scheduler, std::shared_ptr<const TextCodec> codec) {
  auto sh = std::make_shared<FrontendShared>();
  sh->opts = std::move(opts);
  sh->codec = std::move(codec);
  sh->scheduler = std::move(scheduler);
  sh->sink = caf::actor_cast<token_sink_actor>(self);
  auto server = std::make_shared<std::unique_ptr<http::Server>>();
  self->attach_functor([server] {
    if (*server) (*server)->stop();
  });
  return {
    [sh](const TokenEventsMsg& msg) { deliver(sh, msg); },
    [sh](const HealthMsg& msg) {
      auto v = msg.view();
      std::lock_guard lk(sh->mu);
      sh->health_message = v->getMessage().cStr();
      sh->healthy = v->getHealthy();
    },
    [sh, server](started_atom) -> caf::result<std::uint16_t> {
      try {
        *server = std::make_unique<http::Server>(
          sh->opts.server, [sh](http::Request r, http::ResponderPtr out) { handle_http(sh, std::move(r), std::move(out)); });
        return (*server)->start();
      } catch (const std::exception& e) {
        return caf::make_error(caf::sec::runtime_error, std::string(e.what()));
      }
    },
    [sh, server](drain_atom) {
      sh->accepting = false;
      if (*server) (*server)->stop_accepting();
      return true;
    },
    [sh, server](shutdown_atom) {
      // The last events have been delivered (they precede this message); give their bytes a moment to
      // leave before the sockets close.
      auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
      while (std::chrono::steady_clock::now() < deadline) {
        {
          std::lock_guard lk(sh->mu);
          if (sh->live.empty()) break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      if (*server) (*server)->stop();
      auto& route = sh->route_cost;
      auto& cost = sh->token_cost;
      auto& lat = sh->token_latency;
      if (cost.count() > 0)
        spdlog::info("frontend per streamed token: routing p50 {} us / p99 {} us (actor: lookup, hand to the "
                     "strand); work p50 {} us / p99 {} us (strand: detokenize, stop strings, JSON, queue the "
                     "chunk); scheduler send to chunk queued p50 {} us / p99 {} us; {} tokens",
                     route.percentile_us(0.5), route.percentile_us(0.99), cost.percentile_us(0.5),
                     cost.percentile_us(0.99), lat.percentile_us(0.5), lat.percentile_us(0.99), cost.count());
      if (cost.count() > 0) {  // an upper bound on the frontend's CPU: it includes the scheduler and the sim
        rusage ru{};
        getrusage(RUSAGE_SELF, &ru);
        double cpu_s = double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                       1e-6 * double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
        spdlog::info("server process CPU (all threads, whole run) per streamed token: {:.1f} us",
                     1e6 * cpu_s / double(cost.count()));
      }
      return true;
    },
  };
}

}  // namespace troupe
