#pragma once
// The engine loop's logic, without actors: admission, the policy (scheduler_policy.hpp: token budget,
// sequence budget, FCFS, preemption by recompute), prefix-cache hits, the step plan (diffs only), turning
// sampled tokens into events, and the counters and latency histograms behind /metrics.
//
// One step:  schedule() -> kv_request()  --kv manager-->  apply_kv_reply() -> build_plan()
//            --workers-->  update_from_result()  -> events
// The core mirrors the kv manager's free-block count (it is the manager's only client), so it can plan
// preemptions before asking; the manager's reply is authoritative and re-anchors the mirror every step.
// The mirror is exact without prefix caching; with it, shared and evictable cached blocks can make it
// optimistic, and a grant that fails is handled like a preemption (a new request just waits again).
#include "actors/scheduler/engine_metrics.hpp"
#include "actors/scheduler/request_state.hpp"
#include "actors/scheduler/scheduler_policy.hpp"
#include "runtime/schema/messages.hpp"

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace troupe {

struct SchedulerLimits {
  std::uint32_t max_num_seqs = 256;
  std::uint32_t max_num_batched_tokens = 8192;
  std::uint32_t max_model_len = 4096;
  std::uint32_t block_size = 16;
  std::uint32_t num_blocks = 1024;
  std::uint32_t max_waiting = 100000;
  bool enable_prefix_caching = false;
};

// One generated token's logprob and its top-N alternatives (token id, logprob), best first.
struct TokenLogprobOut {
  float logprob = 0;
  std::vector<std::pair<std::int32_t, float>> top;
  std::uint32_t rank = 0;  // prompt logprobs: the token's 1-based rank; 0 unset
};

struct TokenEventOut {
  std::uint64_t id = 0;
  std::uint32_t first_index = 0;
  std::vector<std::int32_t> tokens;
  schema::FinishReason finish = schema::FinishReason::NONE;
  std::int32_t stop_token = -1;
  std::string message;
  std::uint32_t num_prompt = 0;
  std::uint16_t error_status = 0;
  std::vector<TokenLogprobOut> logprobs;  // parallel to tokens when the request asked for logprobs
  std::vector<TokenLogprobOut> prompt_logprobs;  // prompt tokens 1..n-1, with the first token (prompt_logprobs)
};

struct AdmitError {
  std::uint16_t status;  // 400: the request can never run; 503: no room right now
  std::string message;
};

struct StepDecision {
  std::vector<ScheduledItem> items;       // running first, then newly admitted, in FCFS order
  std::vector<std::uint64_t> preempted;   // moved back to waiting this step
  std::uint32_t total_tokens = 0;
  bool empty() const { return items.empty(); }
};

struct SchedulerCounters {
  std::uint64_t steps = 0, prompt_tokens = 0, generation_tokens = 0, preemptions = 0;
  std::uint64_t finished = 0, aborted = 0, errored = 0;
  std::uint64_t finished_stop = 0, finished_length = 0;
  std::uint64_t prefix_queries = 0, prefix_hits = 0;  // tokens looked up / served by the prefix cache
};

class SchedulerCore {
 public:
  explicit SchedulerCore(SchedulerLimits limits);

  // Admission. Returns why (and keeps nothing) if the request cannot be accepted.
  std::optional<AdmitError> add(const SubmitMsg& msg, std::int64_t now_ns);
  // Abort: frees the request's blocks at the next kv exchange. Returns its final event if it was live.
  std::optional<TokenEventOut> abort(std::uint64_t id, const std::string& reason);
  // Ends every live request with an error (a worker was lost, or shutdown ran out of time).
  std::vector<TokenEventOut> fail_all(const std::string& message);

  bool has_work() const { return !running_.empty() || !waiting_.empty(); }
  // Blocks released since the last exchange: the loop flushes them even when nothing is left to run.
  bool has_pending_frees() const { return !pending_frees_.empty(); }
  // The next kv exchange tells the manager to drop its prefix cache (the worker group was re-formed).
  void reset_prefix_cache() { reset_prefix_cache_ = true; }
  StepDecision schedule();
  KvRequestMsg kv_request(const StepDecision& d);
  // Attaches granted blocks. Requests whose grant failed (the mirror was wrong) are preempted.
  void apply_kv_reply(StepDecision& d, const KvReplyMsg& reply);
  StepPlanMsg build_plan(const StepDecision& d);
  // now_ns: the steady clock when the result arrived (0: read it here); feeds the latency histograms.
  std::vector<TokenEventOut> update_from_result(const StepResultMsg& result, std::int64_t now_ns = 0);

  std::size_t num_running() const { return running_.size(); }
  std::size_t num_waiting() const { return waiting_.size(); }
  std::uint32_t mirror_free_blocks() const { return free_blocks_; }
  const SchedulerCounters& counters() const { return counters_; }
  const LatencyHistograms& histograms() const { return hist_; }
  std::uint32_t num_total_blocks() const { return limits_.num_blocks; }
  // Running requests oldest first, waiting ones in queue order (for tests and invariant checks).
  const std::vector<RequestState*>& running() const { return running_; }
  const std::deque<RequestState*>& waiting() const { return waiting_; }
  const RequestState* find(std::uint64_t id) const;

 private:
  void preempt(RequestState& r, bool count = true);
  void release(RequestState& r);  // drops blocks and worker state; the request leaves the core
  bool attach_grant(ScheduledItem& it, schema::KvGrant::Reader g);
  std::optional<TokenEventOut> append_token(RequestState& r, std::int32_t tok, std::int64_t now_ns);
  void record_first_schedules();

  SchedulerLimits limits_;
  BlockMath math_;
  std::unordered_map<std::uint64_t, std::unique_ptr<RequestState>> requests_;
  std::deque<RequestState*> waiting_;
  std::vector<RequestState*> running_;      // admission order: oldest first, preempted from the back
  std::vector<std::uint64_t> pending_frees_;    // for the kv manager's next exchange
  bool reset_prefix_cache_ = false;             // likewise
  std::vector<std::uint64_t> pending_forgets_;  // for the workers' next plan
  std::uint32_t free_blocks_;
  std::uint64_t next_seq_ = 0;
  std::uint64_t next_step_ = 0;
  SchedulerCounters counters_;
  LatencyHistograms hist_;
  std::vector<RequestState*> first_scheduled_;  // scheduled for the first time in the step being planned
};

}  // namespace troupe
