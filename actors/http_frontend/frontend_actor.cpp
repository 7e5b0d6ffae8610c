#include "actors/http_frontend/frontend_actor.hpp"

#include <caf/actor_cast.hpp>
#include <caf/send.hpp>
#include <spdlog/spdlog.h>

#include <chrono>
#include <thread>

namespace troupe {
namespace {

std::int64_t steady_ns() { return std::chrono::steady_clock::now().time_since_epoch().count(); }

void deliver(FrontendShared& sh, const TokenEventsMsg& msg) {
  auto v = msg.view();
  for (auto ev : v->getEvents()) {
    auto t0 = steady_ns();
    std::shared_ptr<RequestContext> ctx;
    {
      std::lock_guard lk(sh.mu);
      auto it = sh.live.find(ev.getRequestId());
      if (it == sh.live.end()) continue;
      ctx = it->second;
    }
    auto outcome = ctx->on_event(ev);
    // A stop string ended a choice here, or a sibling failed: the engine still thinks they run.
    for (auto id : outcome.abort_ids) send_abort(sh, id, "finished by the frontend");
    if (outcome.done) {
      std::lock_guard lk(sh.mu);
      for (std::uint32_t i = 0; i < ctx->n(); ++i) sh.live.erase(ctx->base_id() + i);
    }
    auto t1 = steady_ns();
    if (auto n = ev.getTokens().size()) {
      sh.token_cost.record_ns((t1 - t0) / std::int64_t(n), n);
      if (v->getSentNs() > 0) sh.token_latency.record_ns(t1 - v->getSentNs(), n);
    }
  }
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
    [sh](const TokenEventsMsg& msg) { deliver(*sh, msg); },
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
      auto& cost = sh->token_cost;
      auto& lat = sh->token_latency;
      if (cost.count() > 0)
        spdlog::info("frontend per streamed token: work p50 {} us / p99 {} us (detokenize, stop strings, JSON, "
                     "queue the chunk); scheduler send to chunk queued p50 {} us / p99 {} us; {} tokens",
                     cost.percentile_us(0.5), cost.percentile_us(0.99), lat.percentile_us(0.5), lat.percentile_us(0.99),
                     cost.count());
      return true;
    },
  };
}

}  // namespace troupe
