#include "actors/gpu_worker/cpu_backend.hpp"

#include "model/sampling/sampling.hpp"

#include <spdlog/spdlog.h>

#include <thread>

namespace troupe {

std::string default_model_dir() {
#ifdef TROUPE_MODELS_DIR
  return std::string(TROUPE_MODELS_DIR) + "/stories260K";
#else
  return "models/stories260K";
#endif
}

BackendInfo CpuBackend::init(schema::WorkerInit::Reader init) {
  cpu::CpuModelOptions o;
  o.model_dir = init.getModel().size() ? std::string(init.getModel().cStr()) : default_model_dir();
  o.dummy_weights = std::string(init.getLoadFormat().cStr()) == "dummy";
  o.seed = init.getSeed();
  o.block_size = init.getBlockSize();
  o.num_blocks = init.getNumBlocks();
  if (init.getWorldSize() > 1) {  // the ranks are threads of this process: they reduce through memory
    o.tp.rank = init.getRank();
    o.tp.group = cpu::CpuGroup::join(init.getGroupId(), init.getWorldSize());
  }
  seed_ = init.getSeed();
  model_ = cpu::load_cpu_model(o);
  const auto& c = model_->config();
  spdlog::info("cpu backend (rank {}): {} from {}, {} layers, hidden {}, vocab {}, {} threads", init.getRank(),
               c.architecture, o.model_dir, c.num_hidden_layers, c.hidden_size, c.vocab_size,
               std::thread::hardware_concurrency());
  return {"cpu", init.getNumBlocks()};
}

SampledTokens CpuBackend::execute(const std::vector<WorkerRequest*>& batch) {
  std::vector<cpu::Chunk> chunks;
  std::vector<WorkerRequest*> sampling;
  for (auto* r : batch) {
    if (r->num_scheduled == 0) continue;
    std::span<const std::int32_t> toks(r->tokens);
    chunks.push_back({toks.subspan(r->num_computed, r->num_scheduled), r->num_computed, r->blocks, r->sample_now()});
    if (r->sample_now()) sampling.push_back(r);
  }
  SampledTokens out;
  if (chunks.empty()) return out;
  auto logits = model_->forward(chunks);
  for (std::size_t i = 0; i < sampling.size(); ++i) {
    WorkerRequest& r = *sampling[i];
    std::span<const std::int32_t> all(r.tokens);
    std::size_t np = std::min<std::size_t>(r.num_prompt, all.size());
    // Unseeded requests draw from the worker's seed and their id: reproducible runs, distinct requests.
    std::uint64_t seed = r.has_seed ? r.sampling_seed : seed_ ^ (r.id * 0x9e3779b97f4a7c15ull);
    out[r.id] = sample(logits[i], r.sampling, all.first(np), all.subspan(np), seed);
  }
  return out;
}

}  // namespace troupe
