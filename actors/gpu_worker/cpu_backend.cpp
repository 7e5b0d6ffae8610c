#include "actors/gpu_worker/cpu_backend.hpp"

#include "model/sampling/sampling.hpp"

#include <spdlog/spdlog.h>

#include <cstdlib>
#include <filesystem>
#include <thread>

namespace troupe {

std::string default_model_dir() {
  // The source tree's copy when this binary was built here; else the installed one beside the binary
  // (bin/troupe -> share/troupe/models), so an installed or carried troupe finds its default model.
  namespace fs = std::filesystem;
  if (const char* env = std::getenv("TROUPE_MODELS_DIR")) return std::string(env) + "/stories260K";
#ifdef TROUPE_MODELS_DIR
  if (fs::exists(fs::path(TROUPE_MODELS_DIR) / "stories260K")) return std::string(TROUPE_MODELS_DIR) + "/stories260K";
#endif
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const fs::path installed = exe.parent_path().parent_path() / "share/troupe/models/stories260K";
    if (fs::exists(installed)) return installed.string();
  }
  return "models/stories260K";
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

// Logits rows come back in chunk order: every token's for a request gathering prompt logprobs, else the
// last token's for a request that samples. A row at position p scores the token at p + 1:
//
//   prompt  t0 t1 t2 t3 | out      chunk [1, 3) of a 4-token prompt: rows for p = 1, 2 score t2, t3;
//   rows       r0 r1 r2 r3          r3 (p = 3, a later chunk) samples the first output, scores no prompt token.
//
// prompt_lps[i] belongs to prompt token i + 1; rows are appended only while they stay aligned with it.
SampledTokens CpuBackend::execute(const std::vector<WorkerRequest*>& batch) {
  std::vector<cpu::Chunk> chunks;
  std::vector<WorkerRequest*> active;
  for (auto* r : batch) {
    if (r->num_scheduled == 0) continue;
    std::span<const std::int32_t> toks(r->tokens);
    chunks.push_back({toks.subspan(r->num_computed, r->num_scheduled), r->num_computed, r->blocks, r->sample_now(),
                      r->gathers_prompt_logprobs()});
    active.push_back(r);
  }
  SampledTokens out;
  if (chunks.empty()) return out;
  auto logits = model_->forward(chunks);
  std::size_t row = 0;
  for (std::size_t i = 0; i < active.size(); ++i) {
    WorkerRequest& r = *active[i];
    if (chunks[i].all_logits) {
      for (std::uint32_t k = 0; k < r.num_scheduled; ++k) {
        std::size_t target = std::size_t(r.num_computed) + k + 1;  // the prompt token this row scores
        if (target < r.num_prompt && r.prompt_lps.size() + 1 == target)
          r.prompt_lps.push_back(position_logprob(logits[row + k], r.tokens[target], r.sampling.prompt_logprobs));
      }
      row += r.num_scheduled - 1;  // the last row may also sample
    } else if (!r.sample_now()) {
      continue;
    }
    std::vector<float>& lg = logits[row++];
    if (!r.sample_now()) continue;
    std::span<const std::int32_t> all(r.tokens);
    std::size_t np = std::min<std::size_t>(r.num_prompt, all.size());
    // Unseeded requests draw from the worker's seed and their id: reproducible runs, distinct requests.
    std::uint64_t seed = r.has_seed ? r.sampling_seed : seed_ ^ (r.id * 0x9e3779b97f4a7c15ull);
    out[r.id] = sample(lg, r.sampling, all.first(np), all.subspan(np), seed);
    if (chunks[i].all_logits) {
      if (r.prompt_lps.size() + 1 != r.num_prompt)
        spdlog::warn("request {}: prompt logprobs cover {} of {} prompt tokens (part of the prompt was cached)", r.id,
                     r.prompt_lps.size() + 1, r.num_prompt);
      out[r.id].prompt_logprobs = std::move(r.prompt_lps);
      r.prompt_lps.clear();
    }
  }
  return out;
}

}  // namespace troupe
