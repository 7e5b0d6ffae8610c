#include "actors/coordinator/coordinator.hpp"

#include "actors/coordinator/coord_state.hpp"
#include "actors/coordinator/model_settings.hpp"
#include "actors/node/join_auth.hpp"
#include "actors/gpu_worker/gpu_worker.hpp"
#include "actors/http_frontend/frontend_actor.hpp"
#include "actors/kv_cache/kv_cache_actor.hpp"
#include "actors/scheduler/scheduler_actor.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <limits>
#include <random>

namespace troupe {
namespace coord {

HealthMsg health(const CoordState& st) {
  return HealthMsg::make([&](schema::Health::Builder b) {
    b.setHealthy(st.healthy);
    b.setMessage(st.health_message);
    b.setWorkersReady(st.workers_ready);
    b.setWorkersExpected(static_cast<std::uint32_t>(st.cfg.tensor_parallel_size));
  });
}

void publish_health(const CoordState& st) {
  if (st.frontend) caf::anon_send(st.frontend, health(st));
}

void startup_done(CoordState& st, const std::string& error) {
  st.failed = error;
  st.started = error.empty();
  for (auto& p : st.waiting) {
    if (error.empty())
      p.deliver(st.port);
    else
      p.deliver(caf::make_error(caf::sec::runtime_error, error));
  }
  st.waiting.clear();
}

namespace {

std::uint32_t default_num_blocks(const Config& c) {
  if (c.num_gpu_blocks_override) return static_cast<std::uint32_t>(*c.num_gpu_blocks_override);
  // sim and cpu hold no real KV memory: room for every sequence at full length.
  std::uint64_t per_seq = (std::uint64_t(c.max_model_len) + c.block_size - 1) / c.block_size;
  return static_cast<std::uint32_t>(std::min<std::uint64_t>(per_seq * c.max_num_seqs, 1u << 22));
}

WorkerInitMsg init_msg(const Config& c, std::uint32_t rank, std::uint64_t group_id) {
  return WorkerInitMsg::make([&](schema::WorkerInit::Builder b) {
    b.setRank(rank);
    b.setWorldSize(static_cast<std::uint32_t>(c.tensor_parallel_size));
    b.setBackend(c.backend);
    b.setModel(c.model);
    b.setBlockSize(static_cast<std::uint32_t>(c.block_size));
    b.setNumBlocks(default_num_blocks(c));
    b.setSeed(c.seed);
    b.setLoadFormat(c.load_format);
    b.setGroupId(group_id);
    b.setGpuMemoryUtilization(static_cast<float>(c.gpu_memory_utilization));
    b.setMaxNumBatchedTokens(static_cast<std::uint32_t>(c.max_num_batched_tokens));
    b.setMaxNumSeqs(static_cast<std::uint32_t>(c.max_num_seqs));
    b.setMaxModelLen(static_cast<std::uint32_t>(c.max_model_len));
    b.setNumGpuBlocksOverride(c.num_gpu_blocks_override ? static_cast<std::uint32_t>(*c.num_gpu_blocks_override) : 0);
    b.setEnforceEager(c.enforce_eager);
    auto sim = b.initSim();
    sim.setStepUs(c.sim.step_us);
    sim.setPrefillTokenUs(c.sim.prefill_token_us);
    sim.setDecodeSeqUs(c.sim.decode_seq_us);
    sim.setVocabSize(static_cast<std::uint32_t>(c.sim_vocab_size));
  });
}

void init_rank(Self self, const StatePtr& stp, std::uint64_t gen, std::uint32_t r, gpu_worker_actor w,
               std::shared_ptr<std::uint32_t> min_blocks) {
  auto& st = *stp;
  st.workers[r] = w;
  auto n = static_cast<std::uint32_t>(st.cfg.tensor_parallel_size);
  self->request(w, std::chrono::minutes(30), init_msg(st.cfg, r, st.group_id))
    .then(
      [self, stp, gen, n, min_blocks](const WorkerReadyMsg& ready) {
        if (gen != stp->generation) return;  // a group that was lost while it loaded
        auto v = ready.view();
        *min_blocks = std::min(*min_blocks, v->getNumBlocks());
        spdlog::info("gpu worker {} ready on {} ({} KV blocks)", v->getRank(), v->getDevice().cStr(), v->getNumBlocks());
        if (++stp->workers_ready == n) group_ready(self, stp, *min_blocks);
      },
      [self, stp, gen, r](caf::error& err) {
        if (gen != stp->generation || !stp->failed.empty()) return;
        group_failed(self, stp, "gpu worker " + std::to_string(r) + " failed to start: " + self->system().render(err));
      });
}

}  // namespace

// Ranks are dealt to nodes in blocks: node k hosts ranks [k*per, (k+1)*per); node 0 is this process.
void form_group(Self self, const StatePtr& stp) {
  auto& st = *stp;
  auto n = static_cast<std::uint32_t>(st.cfg.tensor_parallel_size);
  auto per = n / static_cast<std::uint32_t>(st.cfg.nodes);
  auto gen = ++st.generation;
  st.forming = true;
  // The channel for the group's ncclUniqueId: the cuda backend's rank 0 will produce it (ncclGetUniqueId);
  // until then it carries 128 random bytes, the same for every rank of this generation.
  if (st.multi()) st.nccl_id = random_bytes(128);
  st.workers.assign(n, gpu_worker_actor{});
  st.workers_ready = 0;
  auto min_blocks = std::make_shared<std::uint32_t>(std::numeric_limits<std::uint32_t>::max());
  for (std::uint32_t r = 0; r < n; ++r) {
    if (r / per == 0) {
      init_rank(self, stp, gen, r, self->spawn<caf::detached + caf::monitored>(gpu_worker), min_blocks);
      continue;
    }
    place_remote(self, stp, gen, r, r / per,
                 [self, stp, gen, r, min_blocks](gpu_worker_actor w) { init_rank(self, stp, gen, r, w, min_blocks); });
  }
}

void spawn_control_plane(Self self, const StatePtr& stp, std::uint32_t num_blocks) {
  auto& st = *stp;
  auto& c = st.cfg;
  st.num_blocks = num_blocks;
  st.kv = self->spawn<caf::linked>(kv_cache_manager, num_blocks, static_cast<std::uint32_t>(c.block_size),
                                   c.enable_prefix_caching);
  SchedulerLimits lim;
  lim.max_num_seqs = c.max_num_seqs;
  lim.max_num_batched_tokens = c.max_num_batched_tokens;
  lim.max_model_len = c.max_model_len;
  lim.block_size = c.block_size;
  lim.num_blocks = num_blocks;
  lim.max_waiting = c.max_waiting_requests;
  lim.enable_prefix_caching = c.enable_prefix_caching;
  st.sched = self->spawn<caf::linked>(scheduler, lim, st.kv, scheduler_workers(st), c.shutdown_grace_seconds);
  FrontendOptions fo;
  fo.server.host = c.host;
  fo.server.port = static_cast<std::uint16_t>(c.port);
  fo.server.threads = c.http_threads;
  fo.server.max_body_bytes = static_cast<std::size_t>(c.max_request_body_bytes);
  fo.server.max_header_bytes = static_cast<std::size_t>(c.max_header_bytes);
  fo.server.idle_timeout_s = c.http_idle_timeout_seconds;
  fo.server.read_timeout_s = c.http_read_timeout_seconds;
  fo.served_model_name = c.served_model_name;
  fo.model_root = c.model;
  fo.max_model_len = c.max_model_len;
  fo.reasoning_parser = c.reasoning_parser;
  std::shared_ptr<const TextCodec> codec;
  try {
    codec = make_codec(c);
    fo.generation = load_generation_config(c.model);
    if (!fo.generation.empty())
      spdlog::info("default sampling parameters from {}/generation_config.json: {}", c.model,
                   fo.generation.describe());
  } catch (const std::exception& e) {
    return startup_done(st, std::string("model '") + c.model + "': " + e.what());
  }
  st.frontend = self->spawn<caf::linked>(http_frontend, fo, st.sched, codec);
  // Health goes out before the frontend binds (one sender, so in order): the first request after the
  // "serving" line must not find the frontend still thinking it is starting.
  st.healthy = true;
  st.health_message = "ok";
  publish_health(st);
  self->request(st.frontend, std::chrono::seconds(30), started_atom::value)
    .then(
      [stp](std::uint16_t port) {
        stp->port = port;
        startup_done(*stp, "");
      },
      [self, stp](caf::error& err) { startup_done(*stp, "the HTTP frontend failed to start: " + self->system().render(err)); });
}

namespace {

void shutdown_all(Self self, CoordState& st) {
  st.shutting_down = true;
  if (st.multi()) stop_cluster(self, st);
  for (auto& w : st.workers)
    if (w && w.node() == self->node()) self->send_exit(w, caf::exit_reason::user_shutdown);
  // Linked actors would outlive a plain quit() in CAF 0.17: name the reason.
  self->quit(caf::exit_reason::user_shutdown);
}

void on_worker_down(Self self, const StatePtr& stp, const caf::down_msg& dm) {
  auto& st = *stp;
  for (std::size_t r = 0; r < st.workers.size(); ++r) {
    if (!st.workers[r] || st.workers[r].address() != dm.source) continue;
    std::string why = "gpu worker " + std::to_string(r) + " exited (" + self->system().render(dm.reason) + ")";
    if (st.multi()) return group_failed(self, stp, why);
    st.healthy = false;
    st.health_message = why;
    spdlog::error("{}", st.health_message);
    publish_health(st);
    if (!st.started && st.failed.empty()) startup_done(st, st.health_message);
  }
}

}  // namespace
}  // namespace coord

using namespace coord;

coordinator_actor::behavior_type coordinator(coordinator_actor::pointer self, Config cfg) {
  auto stp = std::make_shared<CoordState>();
  stp->cfg = std::move(cfg);
  try {
    resolve_model_settings(stp->cfg);  // serve has checked it already; sim harnesses come straight here
  } catch (const ConfigError& e) {
    stp->failed = e.what();
  }
  self->set_down_handler([self, stp](caf::scheduled_actor*, caf::down_msg& dm) { on_worker_down(self, stp, dm); });
  if (stp->failed.empty()) {
    if (stp->multi())
      start_cluster(self, stp);  // forms the group once every node has joined
    else
      form_group(self, stp);
  }
  return {
    [self, stp](started_atom) -> caf::result<std::uint16_t> {
      if (stp->started) return stp->port;
      if (!stp->failed.empty()) return caf::make_error(caf::sec::runtime_error, stp->failed);
      auto p = self->make_response_promise<std::uint16_t>();
      stp->waiting.push_back(p);
      return p;
    },
    [stp](health_atom) -> HealthMsg { return health(*stp); },
    [self, stp](shutdown_atom) -> caf::result<MetricsMsg> {
      auto& st = *stp;
      auto p = self->make_response_promise<MetricsMsg>();
      if (!st.sched) {  // never got past startup
        p.deliver(MetricsMsg::make([](schema::MetricsSnapshot::Builder) {}));
        shutdown_all(self, st);
        return p;
      }
      spdlog::info("shutting down: no new connections, finishing requests in flight");
      self->request(st.frontend, caf::infinite, drain_atom::value).then([self, stp, p](bool) mutable {
        self->request(stp->sched, caf::infinite, drain_atom::value).then([self, stp, p](const MetricsMsg& m) mutable {
          self->request(stp->frontend, caf::infinite, shutdown_atom::value).then([self, stp, p, m](bool) mutable {
            p.deliver(m);
            shutdown_all(self, *stp);
          });
        });
      });
      return p;
    },
    [stp](topology_atom) -> caf::result<scheduler_actor, kv_cache_actor> {
      return caf::make_result(stp->sched, stp->kv);
    },
    [stp](topology_atom, std::uint32_t rank) -> caf::result<gpu_worker_actor> {
      if (rank >= stp->workers.size() || !stp->workers[rank])
        return caf::make_error(caf::sec::invalid_argument, "no such rank");
      return stp->workers[rank];
    },
    [self, stp](const NodeEventMsg& ev, const node_agent_actor& agent) { on_node_event(self, stp, ev, agent); },
  };
}

}  // namespace troupe
