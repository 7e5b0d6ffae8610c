#pragma once
// An in-process Troupe (coordinator, sim workers, kv manager, scheduler, HTTP frontend on a free port)
// plus a token sink that records every event, for actor-level simulations.
#include "actors/coordinator/coordinator.hpp"
#include "runtime/actor_system.hpp"

#include <caf/actor_system.hpp>
#include <caf/scoped_actor.hpp>

#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace troupe::testing {

struct RecordedRequest {
  std::vector<std::int32_t> tokens;
  bool contiguous = true;  // every event's first_index continued where the last one ended
  schema::FinishReason finish = schema::FinishReason::NONE;
  std::uint16_t error_status = 0;
  std::string message;
  int finish_events = 0;
};

struct Recorder {
  std::mutex mu;
  std::condition_variable cv;
  std::map<std::uint64_t, RecordedRequest> requests;
  std::size_t finished = 0;
  void record(const TokenEventsMsg& msg);
  // Waits until `n` requests have finished; false on timeout.
  bool wait_finished(std::size_t n, double timeout_s);
  // Waits until request `id` has at least `k` tokens.
  bool wait_tokens(std::uint64_t id, std::size_t k, double timeout_s);
};

class SimCluster {
 public:
  explicit SimCluster(Config cfg);
  ~SimCluster();
  void submit(std::uint64_t id, const std::vector<std::int32_t>& prompt, std::uint32_t max_tokens);
  // Greedy (temperature 0), for backends that sample from real logits.
  void submit_greedy(std::uint64_t id, const std::vector<std::int32_t>& prompt, std::uint32_t max_tokens);
  void abort(std::uint64_t id);
  schema::MetricsSnapshot::Reader kv_metrics_into(MetricsMsg& holder);
  // Polls the kv manager until every block is free; returns {free, total}.
  std::pair<std::uint32_t, std::uint32_t> wait_pool_drained(double timeout_s);
  gpu_worker_actor worker(std::uint32_t rank);

  TroupeActorConfig acfg;
  caf::actor_system sys;
  coordinator_actor coord;
  scheduler_actor sched;
  kv_cache_actor kv;
  token_sink_actor sink;
  std::uint16_t port = 0;
  std::shared_ptr<Recorder> rec = std::make_shared<Recorder>();
};

Config sim_config(int tp, int num_blocks);

}  // namespace troupe::testing
