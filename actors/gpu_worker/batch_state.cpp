#include "actors/gpu_worker/batch_state.hpp"

namespace troupe {

SamplingOptions sampling_options(schema::SamplingParams::Reader p, std::int32_t eos_token_id) {
  SamplingOptions o;
  o.temperature = p.getTemperature();
  o.top_p = p.getTopP();
  o.top_k = p.getTopK();
  o.min_p = p.getMinP();
  o.presence_penalty = p.getPresencePenalty();
  o.frequency_penalty = p.getFrequencyPenalty();
  o.repetition_penalty = p.getRepetitionPenalty();
  o.min_tokens = p.getMinTokens();
  o.ignore_eos = p.getIgnoreEos();
  for (auto t : p.getStopTokenIds()) o.stop_token_ids.push_back(t);
  o.eos_token_id = eos_token_id;
  o.logprobs = p.getLogprobs();
  o.prompt_logprobs = p.getPromptLogprobs();
  return o;
}

void write_prompt_logprobs(schema::SampledOutput::Builder out, const SampleResult& s) {
  if (s.prompt_logprobs.empty()) return;
  auto list = out.initPromptLogprobs(static_cast<unsigned>(s.prompt_logprobs.size()));
  for (unsigned i = 0; i < s.prompt_logprobs.size(); ++i) {
    const auto& p = s.prompt_logprobs[i];
    list[i].setLogprob(p.logprob);
    list[i].setRank(p.rank);
    auto top = list[i].initTop(static_cast<unsigned>(p.top.size()));
    for (unsigned k = 0; k < p.top.size(); ++k) {
      top[k].setToken(p.top[k].token);
      top[k].setLogprob(p.top[k].logprob);
    }
  }
}

// The first `num_shared` blocks hold a prefix-cache hit's KV: other requests may hold them too (they are
// only read). Every other block is written by its request, so it must be nobody else's.
std::string BatchState::add_blocks(WorkerRequest& r, capnp::List<std::uint32_t>::Reader ids, std::uint32_t num_shared) {
  std::uint32_t i = 0;
  for (auto b : ids) {
    auto& holders = owned_[b];
    if (holders > 0 && i >= num_shared)
      return "block " + std::to_string(b) + " given to request " + std::to_string(r.id) + " is already owned";
    ++holders;
    ++i;
    r.blocks.push_back(b);
  }
  return {};
}

std::string BatchState::apply(schema::StepPlan::Reader plan) {
  scheduled_.clear();
  for (auto id : plan.getFinishedIds()) {
    auto it = requests_.find(id);
    if (it == requests_.end()) continue;
    for (auto b : it->second.blocks)
      if (--owned_[b] == 0) owned_.erase(b);
    requests_.erase(it);
  }
  for (auto nr : plan.getNewRequests()) {
    auto [it, fresh] = requests_.try_emplace(nr.getRequestId());
    if (!fresh) return "request " + std::to_string(nr.getRequestId()) + " sent twice";
    WorkerRequest& r = it->second;
    r.id = nr.getRequestId();
    for (auto t : nr.getTokenIds()) r.tokens.push_back(t);
    r.num_computed = nr.getNumComputedTokens();
    r.num_scheduled = nr.getNumScheduledTokens();
    r.sampling_seed = nr.getSampling().getHasSeed() ? nr.getSampling().getSeed() : 0;
    r.has_seed = nr.getSampling().getHasSeed();
    r.sampling = sampling_options(nr.getSampling(), nr.getEosTokenId());
    r.num_prompt = nr.getNumPromptTokens() ? nr.getNumPromptTokens() : std::uint32_t(r.tokens.size());
    if (auto e = add_blocks(r, nr.getBlockIds(), r.num_computed / block_size_); !e.empty()) return e;
  }
  for (auto sr : plan.getScheduled()) {
    auto it = requests_.find(sr.getRequestId());
    if (it == requests_.end()) return "scheduled request " + std::to_string(sr.getRequestId()) + " is unknown";
    it->second.num_scheduled = sr.getNumScheduledTokens();
    if (auto e = add_blocks(it->second, sr.getNewBlockIds(), 0); !e.empty()) return e;
  }
  for (auto& [id, r] : requests_) {
    if (r.num_scheduled == 0) continue;
    if (r.num_computed + r.num_scheduled > r.tokens.size())
      return "request " + std::to_string(id) + " scheduled past its tokens";
    std::size_t need = (r.num_computed + r.num_scheduled + block_size_ - 1) / block_size_;
    if (r.blocks.size() < need)
      return "request " + std::to_string(id) + " has " + std::to_string(r.blocks.size()) + " blocks, needs " +
             std::to_string(need);
    scheduled_.push_back(&r);
  }
  return {};
}

void BatchState::commit(const SampledTokens& sampled) {
  for (auto* r : scheduled_) {
    r->num_computed += r->num_scheduled;
    r->num_scheduled = 0;
    if (auto it = sampled.find(r->id); it != sampled.end()) r->tokens.push_back(it->second.token);
  }
  scheduled_.clear();
}

}  // namespace troupe
