#include "actors/scheduler/scheduler_core.hpp"

#include <algorithm>
#include <stdexcept>

namespace troupe {

SchedulerCore::SchedulerCore(SchedulerLimits limits) : limits_(limits), free_blocks_(limits.num_blocks) {
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
  if (blocks_for(static_cast<std::uint32_t>(need)) > limits_.num_blocks)
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
  waiting_.push_back(r.get());
  requests_.emplace(r->id, std::move(r));
  return std::nullopt;
}

const RequestState* SchedulerCore::find(std::uint64_t id) const {
  auto it = requests_.find(id);
  return it == requests_.end() ? nullptr : it->second.get();
}

std::uint32_t SchedulerCore::extra_blocks(const RequestState& r, std::uint32_t num_new) const {
  std::uint32_t want = blocks_for(r.num_computed + num_new);
  return want > r.num_blocks ? want - r.num_blocks : 0;
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

void SchedulerCore::preempt(RequestState& r) {
  // Recompute: forget the KV, keep the tokens; the request resumes from the head of the queue.
  pending_frees_.push_back(r.id);
  if (r.known_to_workers) pending_forgets_.push_back(r.id);
  free_blocks_ += r.num_blocks;
  r.num_blocks = 0;
  r.num_computed = 0;
  r.new_blocks.clear();
  r.known_to_workers = false;
  r.status = RequestStatus::waiting;
  running_.erase(std::find(running_.begin(), running_.end(), &r));
  waiting_.push_front(&r);
  ++counters_.preemptions;
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

// Running requests keep their place; when blocks run out the newest running request is preempted
// (possibly the one being scheduled). Returns false if anything was preempted.
bool SchedulerCore::schedule_running(StepDecision& d, std::uint32_t& budget) {
  bool preempted_any = false;
  for (std::size_t i = 0; i < running_.size() && budget > 0; ++i) {
    RequestState* r = running_[i];
    std::uint32_t todo = r->num_tokens() - r->num_computed;
    std::uint32_t num_new = std::min(todo, budget);
    if (num_new == 0) continue;
    std::uint32_t need = extra_blocks(*r, num_new);
    while (need > free_blocks_) {
      RequestState* victim = running_.back();
      d.preempted.push_back(victim->id);
      preempt(*victim);
      preempted_any = true;
      if (victim == r) break;
    }
    if (r->status != RequestStatus::running) break;  // preempted itself: everything after it is gone too
    free_blocks_ -= need;
    budget -= num_new;
    d.items.push_back({r, num_new});
  }
  return !preempted_any;
}

void SchedulerCore::admit_waiting(StepDecision& d, std::uint32_t& budget) {
  while (!waiting_.empty() && budget > 0 && running_.size() < limits_.max_num_seqs) {
    RequestState* r = waiting_.front();
    std::uint32_t num_new = std::min(r->num_tokens() - r->num_computed, budget);
    std::uint32_t need = extra_blocks(*r, num_new);
    if (need > free_blocks_) break;  // FCFS: nobody overtakes the head of the queue
    waiting_.pop_front();
    r->status = RequestStatus::running;
    running_.push_back(r);
    free_blocks_ -= need;
    budget -= num_new;
    d.items.push_back({r, num_new});
  }
}

StepDecision SchedulerCore::schedule() {
  StepDecision d;
  std::uint32_t budget = limits_.max_num_batched_tokens;
  bool calm = schedule_running(d, budget);
  if (calm) admit_waiting(d, budget);
  // Items may point at requests preempted later in the same pass (victims taken from the back).
  std::erase_if(d.items, [](const ScheduledItem& it) { return it.req->status != RequestStatus::running; });
  for (auto& it : d.items) d.total_tokens += it.num_new;
  return d;
}

KvRequestMsg SchedulerCore::kv_request(const StepDecision& d) {
  auto msg = KvRequestMsg::make([&](schema::KvRequest::Builder b) {
    auto frees = b.initFrees(static_cast<unsigned>(pending_frees_.size()));
    for (unsigned i = 0; i < pending_frees_.size(); ++i) frees.set(i, pending_frees_[i]);
    auto allocs = b.initAllocs(static_cast<unsigned>(d.items.size()));
    for (unsigned i = 0; i < d.items.size(); ++i) {
      allocs[i].setRequestId(d.items[i].req->id);
      allocs[i].setNumTokens(d.items[i].req->num_computed + d.items[i].num_new);
    }
  });
  pending_frees_.clear();
  return msg;
}

void SchedulerCore::apply_kv_reply(StepDecision& d, const KvReplyMsg& reply) {
  auto v = reply.view();
  std::unordered_map<std::uint64_t, schema::KvGrant::Reader> grants;
  for (auto g : v->getGrants()) grants.emplace(g.getRequestId(), g);
  std::vector<ScheduledItem> kept;
  std::uint32_t pending = 0;  // blocks of requests preempted here: the manager frees them next exchange
  for (auto& it : d.items) {
    auto g = grants.find(it.req->id);
    if (g == grants.end() || !g->second.getOk()) {
      // The mirror disagreed with the manager; recompute later rather than run without KV space.
      pending += it.req->num_blocks;
      preempt(*it.req);
      d.preempted.push_back(it.req->id);
      continue;
    }
    for (auto b : g->second.getNewBlockIds()) it.req->new_blocks.push_back(b);
    it.req->num_blocks += g->second.getNewBlockIds().size();
    kept.push_back(it);
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
    if (r.num_computed < r.num_prompt) counters_.prompt_tokens += std::min(it.num_new, r.num_prompt - r.num_computed);
    r.num_computed += it.num_new;
  }
  ++counters_.steps;
  return StepPlanMsg(mb);
}

std::optional<TokenEventOut> SchedulerCore::append_token(RequestState& r, std::int32_t tok) {
  r.tokens.push_back(tok);
  ++counters_.generation_tokens;
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

std::vector<TokenEventOut> SchedulerCore::update_from_result(const StepResultMsg& result) {
  std::vector<TokenEventOut> events;
  auto v = result.view();
  for (auto out : v->getOutputs()) {
    auto it = requests_.find(out.getRequestId());
    if (it == requests_.end()) continue;  // aborted while the step ran
    RequestState& r = *it->second;
    if (r.status != RequestStatus::running) continue;
    TokenEventOut ev{r.id, r.num_output(), {}, schema::FinishReason::NONE, -1, {}, r.num_prompt};
    for (auto tok : out.getTokens()) {
      ev.tokens.push_back(tok);
      if (auto fin = append_token(r, tok)) {
        ev.finish = fin->finish;
        ev.stop_token = fin->stop_token;
        break;
      }
    }
    if (ev.finish != schema::FinishReason::NONE) {
      release(r);
      ++counters_.finished;
    }
    events.push_back(std::move(ev));
  }
  return events;
}

}  // namespace troupe
