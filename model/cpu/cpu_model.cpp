#include "model/cpu/cpu_model.hpp"

#include "model/cpu/llama.hpp"

#include <stdexcept>

#ifdef TROUPE_CPU_DEEPSEEK
#include "model/cpu/deepseek.hpp"
#endif

namespace troupe::cpu {
namespace {

#ifdef TROUPE_CPU_DEEPSEEK
// DeepseekCpuModel returns every chunk's last-token logits; the backend asks only for those it samples.
class DeepseekAdapter final : public CpuModel {
 public:
  DeepseekAdapter(const ModelConfig& c, WeightSource& w, const CpuModelOptions& o)
      : model_(c, w, o.block_size, o.num_blocks, o.threads, o.tp) {}
  const ModelConfig& config() const override { return model_.config(); }
  std::vector<std::vector<float>> forward(std::span<const Chunk> chunks) override {
    std::vector<SeqChunk> seqs;
    bool every = false;  // some chunk wants every token's logits: the lm_head then runs on all rows
    for (const auto& c : chunks) {
      seqs.push_back({c.tokens, c.start_pos, c.block_table});
      every = every || c.all_logits;
    }
    auto all = model_.forward(seqs, {.all_logits = every});
    const std::size_t V = model_.config().vocab_size;
    std::vector<std::vector<float>> out;
    for (std::size_t i = 0; i < chunks.size(); ++i) {
      const auto& c = chunks[i];
      if (c.tokens.empty() || (!c.wants_logits && !c.all_logits)) continue;
      std::size_t n = c.tokens.size(), first = c.all_logits ? 0 : (every ? n - 1 : 0);
      for (std::size_t r = first; r < (c.all_logits ? n : first + 1); ++r)
        out.emplace_back(all[i].begin() + std::ptrdiff_t(r * V), all[i].begin() + std::ptrdiff_t((r + 1) * V));
    }
    return out;
  }

 private:
  DeepseekCpuModel model_;  // holds float32 copies: the checkpoint mapping is released after the load
};
#endif

}  // namespace

std::unique_ptr<CpuModel> load_cpu_model(const CpuModelOptions& opt) {
  ModelConfig cfg = load_model_config(opt.model_dir);
  auto weights = [&] { return opt.dummy_weights ? WeightSource::dummy(opt.seed) : WeightSource::checkpoint(opt.model_dir); };
  if (cfg.arch == Arch::llama || cfg.arch == Arch::qwen2) {
    auto w = weights();
    return std::make_unique<LlamaModel>(cfg, w, opt.block_size, opt.num_blocks, opt.threads, opt.tp);
  }
#ifdef TROUPE_CPU_DEEPSEEK
  if (cfg.is_deepseek()) {
    auto w = weights();
    return std::make_unique<DeepseekAdapter>(cfg, w, opt);
  }
#endif
  throw std::runtime_error("the cpu backend has no " + cfg.architecture +
                           (opt.dummy_weights ? " with load-format dummy" : "") + " implementation in this build");
}

}  // namespace troupe::cpu
