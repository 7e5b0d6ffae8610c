#include "actors/gpu_worker/batch_state.hpp"

namespace troupe {

std::string BatchState::add_blocks(WorkerRequest& r, capnp::List<std::uint32_t>::Reader ids) {
  for (auto b : ids) {
    if (!owned_.insert(b).second)
      return "block " + std::to_string(b) + " given to request " + std::to_string(r.id) + " is already owned";
    r.blocks.push_back(b);
  }
  return {};
}

std::string BatchState::apply(schema::StepPlan::Reader plan) {
  scheduled_.clear();
  for (auto id : plan.getFinishedIds()) {
    auto it = requests_.find(id);
    if (it == requests_.end()) continue;
    for (auto b : it->second.blocks) owned_.erase(b);
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
    if (auto e = add_blocks(r, nr.getBlockIds()); !e.empty()) return e;
  }
  for (auto sr : plan.getScheduled()) {
    auto it = requests_.find(sr.getRequestId());
    if (it == requests_.end()) return "scheduled request " + std::to_string(sr.getRequestId()) + " is unknown";
    it->second.num_scheduled = sr.getNumScheduledTokens();
    if (auto e = add_blocks(it->second, sr.getNewBlockIds()); !e.empty()) return e;
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

void BatchState::commit(const std::unordered_map<std::uint64_t, std::int32_t>& sampled) {
  for (auto* r : scheduled_) {
    r->num_computed += r->num_scheduled;
    r->num_scheduled = 0;
    if (auto it = sampled.find(r->id); it != sampled.end()) r->tokens.push_back(it->second);
  }
  scheduled_.clear();
}

}  // namespace troupe
