#include "tools/troupe/serve.hpp"

#include "actors/coordinator/coordinator.hpp"
#include "actors/coordinator/model_settings.hpp"
#include "runtime/actor_system.hpp"
#include "runtime/config/config.hpp"
#include "runtime/logging.hpp"

#include <caf/actor_system.hpp>
#include <caf/scoped_actor.hpp>

#include <csignal>
#include <cstdio>
#include <pthread.h>

namespace troupe {
namespace {

// Signals are taken synchronously by the main thread: blocked before any thread exists, so every thread
// inherits the mask and none of them is interrupted.
sigset_t block_stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

bool split_args(const std::vector<std::string>& args, std::string& config_path, std::vector<std::string>& rest) {
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--help" || args[i] == "-h") return false;
    // The one positional argument is the config file; every other word belongs to a --key.
    if (i == 0 && args[i].rfind("--", 0) != 0) {
      config_path = args[i];
      continue;
    }
    rest.push_back(args[i]);
  }
  return true;
}

}  // namespace

int serve_main(const std::vector<std::string>& args) {
  std::string config_path;
  std::vector<std::string> rest;
  if (!split_args(args, config_path, rest)) {
    std::printf("usage: troupe serve [CONFIG.yaml] [--key value ...]\n\nkeys:\n%s", config_help().c_str());
    return 0;
  }
  Config cfg;
  try {
    cfg = load_config(config_path, rest);
    resolve_model_settings(cfg);  // max-model-len against the model's: a config error, exit 2
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "troupe: %s\n", e.what());
    return 2;
  }
  init_logging(cfg.log_level);
  sigset_t stop_signals = block_stop_signals();

  TroupeActorConfig acfg;
  if (cfg.nodes > 1) {
    // CAF's own connection heartbeats close a silent TCP link, so a partitioned node's proxies go down
    // too (our heartbeats decide the loss; these keep CAF from reusing a dead connection on rejoin).
    acfg.set("middleman.heartbeat-interval", caf::timespan{std::chrono::milliseconds(cfg.heartbeat_interval_ms)});
    acfg.set("middleman.connection-timeout", caf::timespan{std::chrono::milliseconds(cfg.heartbeat_timeout_ms)});
  }
  caf::actor_system sys{acfg};
  auto coord = sys.spawn(coordinator, cfg);
  caf::scoped_actor self{sys};
  int rc = 0;
  std::uint16_t port = 0;
  self->request(coord, std::chrono::minutes(30), started_atom::value)
    .receive([&](std::uint16_t p) { port = p; },
             [&](caf::error& err) {
               std::fprintf(stderr, "troupe: startup failed: %s\n", sys.render(err).c_str());
               rc = 1;
             });
  if (rc != 0) {
    self->send_exit(coord, caf::exit_reason::user_shutdown);
    return rc;
  }
  // Tests and scripts wait for this exact line.
  std::printf("troupe: serving '%s' (%s backend, tensor-parallel-size %d) on http://%s:%u\n",
              cfg.served_model_name.c_str(), cfg.backend.c_str(), cfg.tensor_parallel_size, cfg.host.c_str(), port);
  std::fflush(stdout);

  int sig = 0;
  sigwait(&stop_signals, &sig);
  // A second Ctrl-C stops at once.
  std::signal(SIGINT, SIG_DFL);
  pthread_sigmask(SIG_UNBLOCK, &stop_signals, nullptr);
  spdlog::info("received {}, draining (up to {} s)", sig == SIGINT ? "SIGINT" : "SIGTERM", cfg.shutdown_grace_seconds);
  self->request(coord, std::chrono::seconds(static_cast<long>(cfg.shutdown_grace_seconds) + 30), shutdown_atom::value)
    .receive(
      [&](const MetricsMsg& m) {
        auto v = m.view();
        spdlog::info("stopped: {} requests finished, {} aborted, {} failed", v->getRequestsFinished(),
                     v->getRequestsAborted(), v->getRequestsErrored());
      },
      [&](caf::error& err) {
        spdlog::error("shutdown did not complete cleanly: {}", sys.render(err));
        self->send_exit(coord, caf::exit_reason::kill);
      });
  return 0;
}

}  // namespace troupe
