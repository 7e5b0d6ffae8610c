#include "actors/scheduler/scheduler_actor.hpp"

#include <caf/scheduled_actor.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <unordered_map>

namespace troupe {
namespace {

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
    .count();
}

struct SchedState {
  SchedState(SchedulerLimits l, kv_cache_actor k, std::vector<gpu_worker_actor> w, double grace)
    : core(l), kv(std::move(k)), workers(std::move(w)), grace_s(grace) {}
  SchedulerCore core;
  kv_cache_actor kv;
  std::vector<gpu_worker_actor> workers;
  std::unordered_map<std::uint64_t, token_sink_actor> sinks;
  bool in_flight = false;
  std::uint64_t generation = 0;  // bumps when a step is abandoned; late answers of old steps are ignored
  std::string broken;            // non-empty: the worker group is lost; every request fails with this
  bool draining = false;
  std::chrono::steady_clock::time_point drain_deadline;
  std::vector<caf::typed_response_promise<MetricsMsg>> drain_promises;
  double grace_s;
};

void fill_event(schema::TokenEvent::Builder b, const TokenEventOut& e) {
  b.setRequestId(e.id);
  b.setFirstIndex(e.first_index);
  auto toks = b.initTokens(static_cast<unsigned>(e.tokens.size()));
  for (unsigned i = 0; i < e.tokens.size(); ++i) toks.set(i, e.tokens[i]);
  b.setFinishReason(e.finish);
  b.setStopTokenId(e.stop_token);
  b.setMessage(e.message);
  b.setNumPromptTokens(e.num_prompt);
  b.setErrorStatus(e.error_status);
  auto fill = [](capnp::List<schema::TokenLogprobs>::Builder lps, const std::vector<TokenLogprobOut>& from) {
    for (unsigned i = 0; i < from.size(); ++i) {
      lps[i].setLogprob(from[i].logprob);
      lps[i].setRank(from[i].rank);
      auto top = lps[i].initTop(static_cast<unsigned>(from[i].top.size()));
      for (unsigned k = 0; k < from[i].top.size(); ++k) {
        top[k].setToken(from[i].top[k].first);
        top[k].setLogprob(from[i].top[k].second);
      }
    }
  };
  fill(b.initLogprobs(static_cast<unsigned>(e.logprobs.size())), e.logprobs);
  if (!e.prompt_logprobs.empty())
    fill(b.initPromptLogprobs(static_cast<unsigned>(e.prompt_logprobs.size())), e.prompt_logprobs);
}

// Groups the step's events by sink: one message per sink per step.
void dispatch(SchedState& st, std::vector<TokenEventOut>& events) {
  std::map<caf::actor_addr, std::pair<token_sink_actor, std::vector<const TokenEventOut*>>> by_sink;
  for (auto& e : events) {
    auto it = st.sinks.find(e.id);
    if (it == st.sinks.end()) continue;
    auto& slot = by_sink[it->second.address()];
    slot.first = it->second;
    slot.second.push_back(&e);
    if (e.finish != schema::FinishReason::NONE) st.sinks.erase(it);
  }
  for (auto& [addr, slot] : by_sink) {
    auto msg = TokenEventsMsg::make([&](schema::TokenEvents::Builder b) {
      auto list = b.initEvents(static_cast<unsigned>(slot.second.size()));
      for (unsigned i = 0; i < slot.second.size(); ++i) fill_event(list[i], *slot.second[i]);
      b.setSentNs(now_ns());
    });
    caf::anon_send(slot.first, std::move(msg));
  }
}

MetricsMsg snapshot(const SchedState& st) {
  return MetricsMsg::make([&](schema::MetricsSnapshot::Builder b) {
    auto& c = st.core.counters();
    b.setNumRunning(static_cast<std::uint32_t>(st.core.num_running()));
    b.setNumWaiting(static_cast<std::uint32_t>(st.core.num_waiting()));
    b.setStepsTotal(c.steps);
    b.setPromptTokensTotal(c.prompt_tokens);
    b.setGenerationTokensTotal(c.generation_tokens);
    b.setPreemptionsTotal(c.preemptions);
    b.setRequestsFinished(c.finished);
    b.setRequestsAborted(c.aborted);
    b.setRequestsErrored(c.errored);
    b.setRequestsFinishedStop(c.finished_stop);
    b.setRequestsFinishedLength(c.finished_length);
    b.setPrefixCacheQueriesTotal(c.prefix_queries);
    b.setPrefixCacheHitsTotal(c.prefix_hits);
    // The mirror, re-anchored on the kv manager's count every step: no extra round trip for /metrics.
    b.setKvBlocksTotal(st.core.num_total_blocks());
    b.setKvBlocksFree(std::min(st.core.mirror_free_blocks(), st.core.num_total_blocks()));
    auto& h = st.core.histograms();
    h.ttft.fill(b.initTimeToFirstToken());
    h.itl.fill(b.initInterTokenLatency());
    h.e2e.fill(b.initE2eRequestLatency());
    h.queue.fill(b.initRequestQueueTime());
  });
}

void fail_everything(SchedState& st, const std::string& why) {
  auto events = st.core.fail_all(why);
  dispatch(st, events);
}

void maybe_finish_drain(SchedState& st) {
  if (!st.draining || st.core.has_work() || st.in_flight || st.core.has_pending_frees()) return;
  for (auto& p : st.drain_promises) p.deliver(snapshot(st));
  st.drain_promises.clear();
}

void finish_step(scheduler_actor::pointer self, SchedState& st, const StepResultMsg& rank0) {
  auto events = st.core.update_from_result(rank0);
  dispatch(st, events);
  st.in_flight = false;
  maybe_finish_drain(st);
  // Through the mailbox: submits and aborts that arrived during the step are taken first.
  if (st.core.has_work() || st.core.has_pending_frees()) self->send(self, step_atom::value);
}

void lose_group(scheduler_actor::pointer self, SchedState& st, const std::string& why) {
  spdlog::error("scheduler: {}; failing every request", why);
  st.broken = why;
  ++st.generation;
  st.in_flight = false;
  fail_everything(st, why);
  self->send(self, step_atom::value);  // gives the failed requests' blocks back
}

using StatePtr = std::shared_ptr<SchedState>;

void broadcast(scheduler_actor::pointer self, const StatePtr& stp, StepPlanMsg plan) {
  auto& st = *stp;
  auto remaining = std::make_shared<std::size_t>(st.workers.size());
  auto rank0 = std::make_shared<StepResultMsg>();
  auto gen = st.generation;
  for (auto& w : st.workers) {
    self->request(w, caf::infinite, plan)
      .then(
        [self, stp, remaining, rank0, gen](const StepResultMsg& res) {
          auto& st = *stp;
          if (gen != st.generation) return;
          auto v = res.view();
          if (v->getError().size() > 0) {
            lose_group(self, st, "worker " + std::to_string(v->getRank()) + " failed a step: " + v->getError().cStr());
            return;
          }
          if (v->getRank() == 0) *rank0 = res;
          if (--*remaining == 0) finish_step(self, st, *rank0);
        },
        [self, stp, gen](caf::error& err) {
          auto& st = *stp;
          if (gen != st.generation) return;
          lose_group(self, st, "a gpu worker was lost (" + caf::to_string(err) + ")");
        });
  }
}

void run_step(scheduler_actor::pointer self, const StatePtr& stp) {
  auto& st = *stp;
  if (st.draining && std::chrono::steady_clock::now() >= st.drain_deadline && (st.in_flight || st.core.has_work())) {
    ++st.generation;  // a step still out is abandoned
    st.in_flight = false;
    fail_everything(st, "the server is shutting down");
    // Falls through: the failed requests' blocks go back before the drain is reported done.
  }
  if (st.in_flight) return;
  // A lost group runs nothing, but the kv manager still takes back the blocks of the failed requests.
  bool can_run = st.broken.empty() && st.core.has_work();
  if (!can_run && !st.core.has_pending_frees()) return;
  auto d = std::make_shared<StepDecision>(can_run ? st.core.schedule() : StepDecision{});
  // Nothing fits and nothing to give back: frees arriving later kick the loop again.
  if (d->empty() && !st.core.has_pending_frees()) return;
  st.in_flight = true;
  auto gen = st.generation;
  // await: nothing else touches the core until the blocks are attached (d holds raw request pointers).
  self->request(st.kv, caf::infinite, st.core.kv_request(*d))
    .await(
      [self, stp, d, gen](const KvReplyMsg& reply) {
        auto& st = *stp;
        if (gen != st.generation) return;
        st.core.apply_kv_reply(*d, reply);
        if (d->empty()) {  // a frees-only exchange
          st.in_flight = false;
          maybe_finish_drain(st);
          if (st.core.has_work()) self->send(self, step_atom::value);
          return;
        }
        broadcast(self, stp, st.core.build_plan(*d));
      },
      [self, stp, gen](caf::error& err) {
        if (gen != stp->generation) return;
        lose_group(self, *stp, "the kv-cache manager was lost (" + caf::to_string(err) + ")");
      });
}

void reject(const token_sink_actor& sink, std::uint64_t id, std::uint16_t status, const std::string& why) {
  std::vector<TokenEventOut> one{{id, 0, {}, schema::FinishReason::ERROR, -1, why, 0, status}};
  auto msg = TokenEventsMsg::make([&](schema::TokenEvents::Builder b) { fill_event(b.initEvents(1)[0], one[0]); });
  caf::anon_send(sink, std::move(msg));
}

}  // namespace

scheduler_actor::behavior_type scheduler(scheduler_actor::pointer self, SchedulerLimits limits, kv_cache_actor kv,
                                         std::vector<gpu_worker_actor> workers, double shutdown_grace_s) {
  auto stp = std::make_shared<SchedState>(limits, std::move(kv), std::move(workers), shutdown_grace_s);
  for (auto& w : stp->workers) self->monitor(w);
  self->set_down_handler([self, stp](caf::scheduled_actor*, caf::down_msg& dm) {
    // After a completed drain the coordinator stops the workers: that is no loss.
    bool drained = stp->draining && !stp->core.has_work() && !stp->in_flight;
    if (stp->broken.empty() && !drained) lose_group(self, *stp, "a gpu worker exited (" + caf::to_string(dm.reason) + ")");
  });
  return {
    [self, stp](const SubmitMsg& msg, token_sink_actor sink) {
      auto& st = *stp;
      auto id = msg.view()->getRequestId();
      if (!st.broken.empty()) return reject(sink, id, 503, st.broken);
      if (st.draining) return reject(sink, id, 503, "the server is shutting down");
      if (auto err = st.core.add(msg, now_ns())) return reject(sink, id, err->status, err->message);
      st.sinks.emplace(id, std::move(sink));
      run_step(self, stp);
    },
    [self, stp](const AbortMsg& msg) {
      auto v = msg.view();
      if (auto ev = stp->core.abort(v->getRequestId(), v->getReason())) {
        std::vector<TokenEventOut> events{std::move(*ev)};
        dispatch(*stp, events);
      }
      run_step(self, stp);  // flushes its blocks back to the pool
    },
    [self, stp](step_atom) { run_step(self, stp); },
    // From the coordinator of a multi-node group: a lost node fails every request at once (even with no
    // step out); a re-formed group (fresh workers) lets the loop run again.
    [self, stp](group_atom, bool whole, const std::string& why) {
      if (!whole) {
        if (stp->broken.empty()) lose_group(self, *stp, why);
        return;
      }
      stp->broken.clear();
      stp->core.reset_prefix_cache();  // fresh workers: the cached blocks' KV is gone
      run_step(self, stp);
    },
    [stp](metrics_atom) -> MetricsMsg { return snapshot(*stp); },
    [self, stp](drain_atom) -> caf::result<MetricsMsg> {
      auto& st = *stp;
      if (!st.draining) {
        st.draining = true;
        auto grace = std::chrono::duration<double>(st.grace_s);
        st.drain_deadline = std::chrono::steady_clock::now() +
                            std::chrono::duration_cast<std::chrono::steady_clock::duration>(grace);
        // Wakes the loop at the deadline even if a step never returns.
        self->delayed_send(self, std::chrono::duration_cast<std::chrono::milliseconds>(grace) +
                                   std::chrono::milliseconds(1), step_atom::value);
      }
      auto p = self->make_response_promise<MetricsMsg>();
      st.drain_promises.push_back(p);
      maybe_finish_drain(st);
      return p;
    },
  };
}

}  // namespace troupe
