#pragma once
// The cpu reference forward of Llama (incl. Llama-3 rope_scaling, tied embeddings) and Qwen2 (q/k/v
// biases): float32, GQA attention over a paged KV cache, SwiGLU MLP, as transformers computes them.
#include "model/cpu/collective.hpp"
#include "model/cpu/cpu_model.hpp"
#include "model/cpu/dense.hpp"
#include "model/cpu/weights.hpp"

#include <memory>

namespace troupe::cpu {

// HF Llama's inverse RoPE frequencies for one head (head_dim/2 values), rope_scaling applied.
std::vector<float> llama_inv_freq(const ModelConfig& c);

// KV of every layer for one token slot lives in one block row: [layer][slot][k | v][kv_dim]. Blocks
// are allocated when first written, so a large num_blocks costs memory only as sequences use it.
class PagedKv {
 public:
  PagedKv(std::uint32_t layers, std::uint32_t block_size, std::uint32_t num_blocks, std::uint32_t kv_dim);
  float* k(std::uint32_t block, std::uint32_t layer, std::uint32_t slot);  // allocates the block
  const float* k(std::uint32_t block, std::uint32_t layer, std::uint32_t slot) const;
  const float* v(std::uint32_t block, std::uint32_t layer, std::uint32_t slot) const {
    return k(block, layer, slot) + kv_dim_;
  }
  std::uint32_t block_size() const { return block_size_; }
  std::uint32_t num_blocks() const { return std::uint32_t(blocks_.size()); }

 private:
  std::uint32_t layers_, block_size_, kv_dim_;
  std::vector<std::unique_ptr<float[]>> blocks_;
};

class LlamaModel final : public CpuModel {
 public:
  // Throws CheckpointError for a missing or misshapen tensor (or heads / intermediate size that do not
  // split evenly over the tensor-parallel ranks), std::invalid_argument for a non-Llama config.
  // With tp.world() > 1 the model holds rank tp.rank's shard (Megatron: q/k/v and gate/up by output rows,
  // o/down by input columns, whole heads) and all-reduces after o_proj and down_proj; embeddings, norms
  // and lm_head are whole on every rank.
  LlamaModel(const ModelConfig& config, WeightSource& weights, std::uint32_t block_size, std::uint32_t num_blocks,
             unsigned threads = 0, TensorParallel tp = {});
  const ModelConfig& config() const override { return cfg_; }
  std::vector<std::vector<float>> forward(std::span<const Chunk> chunks) override;

 private:
  struct Layer {
    std::vector<float> attn_norm, mlp_norm, wq, wk, wv, wo, bq, bk, bv, gate, up, down;
  };
  struct Batch;  // the flattened tokens of one forward
  void load(WeightSource& w);
  void validate(std::span<const Chunk> chunks) const;
  void attention(std::uint32_t l, const Batch& b, std::vector<float>& x);
  void mlp(std::uint32_t l, const Batch& b, std::vector<float>& x);
  void rope(float* v, std::size_t heads, std::int64_t pos) const;

  std::vector<float> shard(WeightSource& w, const std::string& name, std::vector<std::int64_t> shape, int dim,
                           std::int64_t granule, Init init = Init::normal) const;

  ModelConfig cfg_;
  TensorParallel tp_;
  std::uint32_t hd_, heads_, kv_heads_, ff_, q_dim_, kv_dim_;  // this rank's share
  std::vector<float> embed_, final_norm_, lm_head_;  // lm_head_ empty when tied
  std::vector<Layer> layers_;
  std::vector<float> inv_freq_;
  std::unique_ptr<ThreadPool> threads_;
  PagedKv kv_;
};

}  // namespace troupe::cpu
