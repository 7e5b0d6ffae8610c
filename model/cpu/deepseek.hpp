#pragma once
// The cpu reference forward of DeepSeek-V3 / R1 and DeepSeek-V2 (V2-Lite): exact float32 math from the
// checkpoint's weights (bf16 upcast, FP8 dequantized per 128x128 block), MLA attention over a paged
// latent cache, MoE routing as transformers does it. It is the oracle the CUDA kernels are tested against.
//
// One forward takes a mixed batch: prefill chunks and single decode tokens of different sequences. Each
// chunk's KV rows are written into the cache at its positions; earlier positions must already be there.
#include "model/checkpoint/checkpoint.hpp"
#include "model/config/model_config.hpp"
#include "model/cpu/collective.hpp"
#include "model/cpu/deepseek_ops.hpp"
#include "model/cpu/mla.hpp"
#include "model/cpu/moe.hpp"
#include "model/cpu/weights.hpp"

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
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

// Tensor parallelism (tp.world() > 1): each rank loads only its shard at load time --
//   attention:  whole heads: q_b_proj (q_proj) and kv_b_proj rows, o_proj columns; q_a/kv_a and norms whole
//   dense MLP and shared experts:  gate/up rows, down columns (Megatron)
//   routed experts:  by expert, rank r holds experts [r*E/tp, (r+1)*E/tp); the router is whole
// and all-reduces (sums) after o_proj and after each MLP/MoE; embeddings, final norm and lm_head are whole.
// Ranks sum in rank order, so they agree bitwise; against one rank the sums differ only in rounding.
class DeepseekCpuModel {
 public:
  // Throws std::invalid_argument for a non-DeepSeek config, CheckpointError for missing/misshapen tensors
  // (or dimensions the tensor-parallel size does not divide). A dummy WeightSource (load-format dummy)
  // needs no checkpoint: N(0, 0.02) matrices, unit norms, zero router bias.
  DeepseekCpuModel(const ModelConfig& config, WeightSource& weights, std::uint32_t block_size,
                   std::uint32_t num_blocks, unsigned threads = 0, TensorParallel tp = {});
  DeepseekCpuModel(const ModelConfig& config, const Checkpoint& ckpt, std::uint32_t block_size,
                   std::uint32_t num_blocks, unsigned threads = 0, TensorParallel tp = {});
  ~DeepseekCpuModel();

  // Per chunk, vocab_size floats: the last token's logits, or [tokens x vocab_size] with all_logits
  // (empty for an empty chunk).
  // Throws std::invalid_argument (bad token id, block table too short, block id out of range).
  std::vector<std::vector<float>> forward(std::span<const SeqChunk> chunks, const ForwardOptions& opt = {});

  const ModelConfig& config() const { return config_; }
  std::uint32_t block_size() const { return block_size_; }
  std::uint32_t num_blocks() const { return num_blocks_; }
  unsigned threads() const { return pool_->size(); }
  // The shape of every tensor this rank holds, by checkpoint name, in load order (tests check the split).
  const std::vector<std::pair<std::string, std::vector<std::int64_t>>>& held_shapes() const { return shapes_; }

 private:
  struct Layer;
  void load(WeightSource& w);
  void check_divisible() const;
  void validate(std::span<const SeqChunk> chunks) const;
  void layer_forward(std::uint32_t l, const AttnBatch& b, std::vector<float>& x, AttentionForm form);
  // Loading: the whole tensor, or this rank's rows (dim 0) / columns (dim 1) in whole `granule` units.
  std::vector<float> whole(WeightSource& w, const std::string& name, std::vector<std::int64_t> shape,
                           Init init = Init::normal);
  std::vector<float> part(WeightSource& w, const std::string& name, std::vector<std::int64_t> shape, int dim,
                          std::int64_t granule);
  MlpWeights load_mlp(WeightSource& w, const std::string& prefix, std::uint32_t inter, bool split);
  MlaWeights load_mla(WeightSource& w, const std::string& prefix);

  ModelConfig config_;
  std::uint32_t block_size_, num_blocks_;
  TensorParallel tp_;
  std::vector<std::pair<std::string, std::vector<std::int64_t>>> shapes_;
  std::unique_ptr<ThreadPool> pool_;
  std::vector<float> embed_, final_norm_, lm_head_;
  std::vector<Layer> layers_;
  std::unique_ptr<Mla> mla_;
  std::unique_ptr<PagedLatentCache> cache_;
};

}  // namespace troupe::cpu
