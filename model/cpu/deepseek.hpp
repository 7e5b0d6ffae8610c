#pragma once
// The cpu reference forward of DeepSeek-V3 / R1 and DeepSeek-V2 (V2-Lite): exact float32 math from the
// checkpoint's weights (bf16 upcast, FP8 dequantized per 128x128 block), MLA attention over a paged
// latent cache, MoE routing as transformers does it. It is the oracle the CUDA kernels are tested against.
//
// One forward takes a mixed batch: prefill chunks and single decode tokens of different sequences. Each
// chunk's KV rows are written into the cache at its positions; earlier positions must already be there.
#include "model/checkpoint/checkpoint.hpp"
#include "model/config/model_config.hpp"
#include "model/cpu/deepseek_ops.hpp"
#include "model/cpu/mla.hpp"
#include "model/cpu/moe.hpp"
#include "model/cpu/weights.hpp"

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace troupe::cpu {

struct SeqChunk {
  std::span<const std::int32_t> tokens;        // this step's tokens of one sequence
  std::uint32_t start_pos = 0;                 // position of tokens[0]; positions below are in the cache
  std::span<const std::uint32_t> block_table;  // the sequence's blocks, covering start_pos + tokens.size()
};

struct ForwardOptions {
  bool all_logits = false;                     // every token's logits, not only the chunk's last
  AttentionForm attention = AttentionForm::absorbed;
};

class DeepseekCpuModel {
 public:
  // Throws std::invalid_argument for a non-DeepSeek config, CheckpointError for missing/misshapen tensors.
  // A dummy WeightSource (load-format dummy) needs no checkpoint: N(0, 0.02) matrices, unit norms, zero
  // router bias.
  DeepseekCpuModel(const ModelConfig& config, WeightSource& weights, std::uint32_t block_size,
                   std::uint32_t num_blocks, unsigned threads = 0);
  DeepseekCpuModel(const ModelConfig& config, const Checkpoint& ckpt, std::uint32_t block_size,
                   std::uint32_t num_blocks, unsigned threads = 0);
  ~DeepseekCpuModel();

  // Per chunk, vocab_size floats: the last token's logits, or [tokens x vocab_size] with all_logits
  // (empty for an empty chunk).
  // Throws std::invalid_argument (bad token id, block table too short, block id out of range).
  std::vector<std::vector<float>> forward(std::span<const SeqChunk> chunks, const ForwardOptions& opt = {});

  const ModelConfig& config() const { return config_; }
  std::uint32_t block_size() const { return block_size_; }
  std::uint32_t num_blocks() const { return num_blocks_; }
  unsigned threads() const { return pool_->size(); }

 private:
  struct Layer;
  void load(WeightSource& w);
  void validate(std::span<const SeqChunk> chunks) const;
  void layer_forward(std::uint32_t l, const AttnBatch& b, std::vector<float>& x, AttentionForm form);

  ModelConfig config_;
  std::uint32_t block_size_, num_blocks_;
  std::unique_ptr<ThreadPool> pool_;
  std::vector<float> embed_, final_norm_, lm_head_;
  std::vector<Layer> layers_;
  std::unique_ptr<Mla> mla_;
  std::unique_ptr<PagedLatentCache> cache_;
};

}  // namespace troupe::cpu
