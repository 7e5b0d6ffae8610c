#include "actors/scheduler/scheduler_core.hpp"

#include "actors/scheduler/block_hash.hpp"

#include <algorithm>
#include <chrono>
#include <stdexcept>

namespace troupe {
namespace {
std::int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
    .count();
}
double seconds(std::int64_t ns) { return double(ns) * 1e-9; }
bool skips_prefix_cache(const RequestState& r) {
  return r.num_output() == 0 && r.submit.view()->getSampling().getPromptLogprobs() >= 0;
}
TokenLogprobOut logprob_out(schema::TokenLogprobs::Reader r) {
  TokenLogprobOut o{r.getLogprob(), {}, r.getRank()};
  for (auto t : r.getTop()) o.top.emplace_back(t.getToken(), t.getLogprob());
  return o;
}
}  // namespace

SchedulerCore::SchedulerCore(SchedulerLimits limits)
  : limits_(limits), math_{limits.block_size}, free_blocks_(limits.num_blocks) {
  if (limits_.block_size == 0 || limits_.max_num_seqs == 0 || limits_.max_num_batched_tokens == 0)
    throw std::invalid_argument("scheduler limits must be positive");
}

std::optional<AdmitError> SchedulerCore::add(const SubmitMsg& msg, std::int64_t now_ns) {
  auto v = msg.view();
  auto prompt = v->getPromptTokens();
  auto sp = v->getSampling();
  if (requests_.count(v->getRequestId())) return AdmitError{400, "duplicate request id"};
  if (prompt.size() == 0) return AdmitError{400, "the prompt is empty"};
  std::uint64_t need = std::uint64_t(prompt.size()) + sp.getMaxTokens();
  if (need > limits_.max_model_len)
    return AdmitError{400, "This model's maximum context length is " + std::to_string(limits_.max_model_len) +
                               " tokens. However, you requested " + std::to_string(need) + " tokens (" +
                               std::to_string(prompt.size()) + " in the prompt, " +
                               std::to_string(sp.getMaxTokens()) + " for the completion)."};
  if (math_.blocks_for(static_cast<std::uint32_t>(need)) > limits_.num_blocks)
    return AdmitError{400, "the request needs more KV-cache blocks than the whole cache holds"};
  if (waiting_.size() >= limits_.max_waiting) return AdmitError{503, "the waiting queue is full"};

  auto r = std::make_unique<RequestState>();
  r->id = v->getRequestId();
  r->submit = msg;
  r->tokens.reserve(prompt.size());
  for (auto t : prompt) r->tokens.push_back(t);
  r->num_prompt = static_cast<std::uint32_t>(prompt.size());
  r->arrival_ns = v->getArrivalNs() ? v->getArrivalNs() : now_ns;
  r->arrival_seq = next_seq_++;
  r->max_tokens = sp.getMaxTokens();
  r->min_tokens = sp.getMinTokens();
  r->ignore_eos = sp.getIgnoreEos();
  r->eos = v->getEosTokenId();
  for (auto t : sp.getStopTokenIds()) r->stop_ids.push_back(t);
  if (limits_.enable_prefix_caching) extend_block_hashes(r->block_hashes, r->tokens, limits_.block_size);
  waiting_.push_back(r.get());
  requests_.emplace(r->id, std::move(r));
  return std::nullopt;
}

const RequestState* SchedulerCore::find(std::uint64_t id) const {
  auto it = requests_.find(id);
  return it == requests_.end() ? nullptr : it->second.get();
}

void SchedulerCore::release(RequestState& r) {
  if (r.num_blocks > 0 || r.status == RequestStatus::running) pending_frees_.push_back(r.id);
  if (r.known_to_workers) pending_forgets_.push_back(r.id);
  free_blocks_ += r.num_blocks;
  r.num_blocks = 0;
  if (r.status == RequestStatus::running)
    running_.erase(std::find(running_.begin(), running_.end(), &r));
  else if (r.status == RequestStatus::waiting)
    waiting_.erase(std::find(waiting_.begin(), waiting_.end(), &r));
  r.status = RequestStatus::finished;
  requests_.erase(r.id);  // r is gone after this line
}

void SchedulerCore::preempt(RequestState& r, bool count) {
  // Recompute: forget the KV, keep the tokens; the request resumes from the head of the queue (with
  // prefix caching, mostly from its own blocks if they are not evicted by then).
  pending_frees_.push_back(r.id);
  if (r.known_to_workers) pending_forgets_.push_back(r.id);
  free_blocks_ += r.num_blocks;
  r.num_blocks = 0;
  r.num_computed = 0;
  r.hashes_sent = 0;
  r.new_blocks.clear();
  r.known_to_workers = false;
  r.status = RequestStatus::waiting;
  running_.erase(std::find(running_.begin(), running_.end(), &r));
  waiting_.push_front(&r);
  if (count) ++counters_.preemptions;
}

std::optional<TokenEventOut> SchedulerCore::abort(std::uint64_t id, const std::string& reason) {
  auto it = requests_.find(id);
  if (it == requests_.end()) return std::nullopt;
  auto& r = *it->second;
  TokenEventOut ev{r.id, r.num_output(), {}, schema::FinishReason::ABORT, -1, reason, r.num_prompt};
  release(r);
  ++counters_.aborted;
  return ev;
}

std::vector<TokenEventOut> SchedulerCore::fail_all(const std::string& message) {
  std::vector<TokenEventOut> out;
  std::vector<RequestState*> live(running_.begin(), running_.end());
  live.insert(live.end(), waiting_.begin(), waiting_.end());
  for (auto* r : live) {
    TokenEventOut ev{r->id, r->num_output(), {}, schema::FinishReason::ERROR, -1, message, r->num_prompt, 503};
    out.push_back(std::move(ev));
    release(*r);
    ++counters_.errored;
  }
  return out;
}

StepDecision SchedulerCore::schedule() {
  StepDecision d;
  StepBudget budget{limits_.max_num_batched_tokens, free_blocks_};
  auto pick = ScheduleRunning{math_}(running_, budget);
  d.items = std::move(pick.items);
  for (RequestState* victim : pick.preempt) {  // newest first: the oldest victim ends at the queue's head
    d.preempted.push_back(victim->id);
    preempt(*victim);
  }
  if (pick.preempt.empty()) {
    for (auto& it : AdmitWaiting{math_, limits_.max_num_seqs}(waiting_, running_.size(), budget)) {
      waiting_.pop_front();
      it.req->status = RequestStatus::running;
      running_.push_back(it.req);
      d.items.push_back(it);
    }
  }
  free_blocks_ = budget.free_blocks;
  for (auto& it : d.items) d.total_tokens += it.num_new;
  return d;
}

KvRequestMsg SchedulerCore::kv_request(const StepDecision& d) {
  auto msg = KvRequestMsg::make([&](schema::KvRequest::Builder b) {
    auto frees = b.initFrees(static_cast<unsigned>(pending_frees_.size()));
    for (unsigned i = 0; i < pending_frees_.size(); ++i) frees.set(i, pending_frees_[i]);
    b.setResetPrefixCache(reset_prefix_cache_);
    auto allocs = b.initAllocs(static_cast<unsigned>(d.items.size()));
    for (unsigned i = 0; i < d.items.size(); ++i) {
      RequestState& r = *d.items[i].req;
      allocs[i].setRequestId(r.id);
      allocs[i].setNumTokens(r.num_computed + d.items[i].num_new);
      // 0 known tokens: no prefix-cache lookup. A request that wants prompt logprobs and has no output yet
      // must compute every prompt position (vLLM skips reading the cache for it too); its blocks still
      // enter the cache for others.
      allocs[i].setNumKnownTokens(skips_prefix_cache(r) ? 0 : r.num_tokens());
      auto n = static_cast<unsigned>(r.block_hashes.size() - r.hashes_sent);
      auto hashes = allocs[i].initBlockHashes(n);
      for (unsigned j = 0; j < n; ++j) hashes.set(j, r.block_hashes[r.hashes_sent + j]);
      r.hashes_sent += n;
    }
  });
  pending_frees_.clear();
  reset_prefix_cache_ = false;
  return msg;
}

// A request that held no blocks may start past its cached prefix, with a smaller chunk than planned.
bool SchedulerCore::attach_grant(ScheduledItem& it, schema::KvGrant::Reader g) {
  RequestState& r = *it.req;
  if (!g.getOk() || g.getRequestId() != r.id) return false;
  if (r.num_blocks == 0) {
    if (limits_.enable_prefix_caching && !skips_prefix_cache(r)) {
      counters_.prefix_queries += r.num_tokens();
      counters_.prefix_hits += g.getNumCachedTokens();
    }
    r.num_computed = g.getNumCachedTokens();
    it.num_new = g.getNumTokens() - r.num_computed;
  }
  for (auto b : g.getNewBlockIds()) r.new_blocks.push_back(b);
  r.num_blocks += g.getNewBlockIds().size();
  return true;
}

void SchedulerCore::apply_kv_reply(StepDecision& d, const KvReplyMsg& reply) {
  auto v = reply.view();
  auto grants = v->getGrants();
  std::vector<ScheduledItem> kept;
  std::vector<RequestState*> failed;
  std::uint32_t pending = 0;  // blocks of requests preempted here: the manager frees them next exchange
  kept.reserve(d.items.size());
  for (unsigned i = 0; i < d.items.size(); ++i) {
    auto& it = d.items[i];
    if (i < grants.size() && attach_grant(it, grants[i])) {
      kept.push_back(it);
      continue;
    }
    // The mirror disagreed with the manager; recompute later rather than run without KV space.
    pending += it.req->num_blocks;
    failed.push_back(it.req);
  }
  // Back to the queue's head in their order; one that held nothing was never really running.
  for (auto f = failed.rbegin(); f != failed.rend(); ++f) {
    d.preempted.push_back((*f)->id);
    preempt(**f, (*f)->num_blocks > 0);
  }
  d.items = std::move(kept);
  free_blocks_ = v->getNumFreeBlocks() + pending;  // re-anchor the mirror on the authority
  d.total_tokens = 0;
  for (auto& it : d.items) d.total_tokens += it.num_new;
}

StepPlanMsg SchedulerCore::build_plan(const StepDecision& d) {
  capnp::MallocMessageBuilder mb;
  auto b = mb.initRoot<schema::StepPlan>();
  b.setStepId(next_step_++);
  b.setTotalScheduledTokens(d.total_tokens);
  auto forgets = b.initFinishedIds(static_cast<unsigned>(pending_forgets_.size()));
  for (unsigned i = 0; i < pending_forgets_.size(); ++i) forgets.set(i, pending_forgets_[i]);
  pending_forgets_.clear();

  unsigned n_new = 0;
  for (auto& it : d.items) n_new += it.req->known_to_workers ? 0 : 1;
  auto news = b.initNewRequests(n_new);
  auto olds = b.initScheduled(static_cast<unsigned>(d.items.size()) - n_new);
  unsigned in = 0, io = 0;
  for (auto& it : d.items) {
    RequestState& r = *it.req;
    if (!r.known_to_workers) {
      // The whole request travels once: tokens (prompt + outputs when resuming) and all its blocks.
      auto nr = news[in++];
      nr.setRequestId(r.id);
      auto toks = nr.initTokenIds(r.num_tokens());
      for (unsigned i = 0; i < r.num_tokens(); ++i) toks.set(i, r.tokens[i]);
      nr.setNumComputedTokens(r.num_computed);
      auto blocks = nr.initBlockIds(static_cast<unsigned>(r.new_blocks.size()));
      for (unsigned i = 0; i < r.new_blocks.size(); ++i) blocks.set(i, r.new_blocks[i]);
      nr.setNumScheduledTokens(it.num_new);
      nr.setSampling(r.submit.view()->getSampling());
      nr.setNumPromptTokens(r.num_prompt);
      nr.setEosTokenId(r.eos);
      r.known_to_workers = true;
    } else {
      auto sr = olds[io++];
      sr.setRequestId(r.id);
      sr.setNumScheduledTokens(it.num_new);
      auto blocks = sr.initNewBlockIds(static_cast<unsigned>(r.new_blocks.size()));
      for (unsigned i = 0; i < r.new_blocks.size(); ++i) blocks.set(i, r.new_blocks[i]);
    }
    r.new_blocks.clear();
    // Counted as computed when scheduled (vLLM v1): the next step may already plan the decode.
    r.num_computed += it.num_new;
    if (r.first_scheduled_ns == 0) first_scheduled_.push_back(&r);
  }
  record_first_schedules();
  ++counters_.steps;
  return StepPlanMsg(mb);
}

void SchedulerCore::record_first_schedules() {
  if (first_scheduled_.empty()) return;
  std::int64_t now = steady_ns();
  for (auto* r : first_scheduled_) {
    r->first_scheduled_ns = now;
    hist_.queue.observe(seconds(std::max<std::int64_t>(0, now - r->arrival_ns)));
  }
  first_scheduled_.clear();
}

std::optional<TokenEventOut> SchedulerCore::append_token(RequestState& r, std::int32_t tok, std::int64_t now_ns) {
  r.tokens.push_back(tok);
  ++counters_.generation_tokens;
  if (r.last_token_ns == 0) {
    counters_.prompt_tokens += r.num_prompt;  // vLLM counts a prompt once, when its first token comes
    hist_.ttft.observe(seconds(std::max<std::int64_t>(0, now_ns - r.arrival_ns)));
  } else {
    hist_.itl.observe(seconds(std::max<std::int64_t>(0, now_ns - r.last_token_ns)));
  }
  r.last_token_ns = now_ns;
  if (limits_.enable_prefix_caching && r.tokens.size() % limits_.block_size == 0)
    extend_block_hashes(r.block_hashes, r.tokens, limits_.block_size);
  std::uint32_t n = r.num_output();
  auto finish = schema::FinishReason::NONE;
  std::int32_t stop_token = -1;
  if (n >= r.min_tokens) {
    if (!r.ignore_eos && tok == r.eos) {
      finish = schema::FinishReason::STOP;
    } else if (std::find(r.stop_ids.begin(), r.stop_ids.end(), tok) != r.stop_ids.end()) {
      finish = schema::FinishReason::STOP;
      stop_token = tok;
    }
  }
  if (finish == schema::FinishReason::NONE && (n >= r.max_tokens || r.num_tokens() >= limits_.max_model_len))
    finish = schema::FinishReason::LENGTH;
  if (finish == schema::FinishReason::NONE) return std::nullopt;
  TokenEventOut ev{r.id, 0, {}, finish, stop_token, {}, r.num_prompt};
  return ev;
}

std::vector<TokenEventOut> SchedulerCore::update_from_result(const StepResultMsg& result, std::int64_t now_ns) {
  if (now_ns == 0) now_ns = steady_ns();
  std::vector<TokenEventOut> events;
  auto v = result.view();
  for (auto out : v->getOutputs()) {
    auto it = requests_.find(out.getRequestId());
    if (it == requests_.end()) continue;  // aborted while the step ran
    RequestState& r = *it->second;
    if (r.status != RequestStatus::running) continue;
    TokenEventOut ev{r.id, r.num_output(), {}, schema::FinishReason::NONE, -1, {}, r.num_prompt};
    auto toks = out.getTokens();
    auto lps = out.getLogprobs();
    for (auto p : out.getPromptLogprobs()) ev.prompt_logprobs.push_back(logprob_out(p));
    for (unsigned j = 0; j < toks.size(); ++j) {
      std::int32_t tok = toks[j];
      ev.tokens.push_back(tok);
      if (j < lps.size()) ev.logprobs.push_back(logprob_out(lps[j]));
      if (auto fin = append_token(r, tok, now_ns)) {
        ev.finish = fin->finish;
        ev.stop_token = fin->stop_token;
        break;
      }
    }
    if (ev.finish != schema::FinishReason::NONE) {
      hist_.e2e.observe(seconds(std::max<std::int64_t>(0, now_ns - r.arrival_ns)));
      ++(ev.finish == schema::FinishReason::STOP ? counters_.finished_stop : counters_.finished_length);
      release(r);
      ++counters_.finished;
    }
    events.push_back(std::move(ev));
  }
  return events;
}

}  // namespace troupe
