#pragma once
// Multi-head latent attention (DeepSeek V2/V3) over a paged latent cache.
//
// One cache row per token holds what every head's K and V are decompressed from:
//
//   row = [ c_kv: kv_lora_rank floats (after kv_a_layernorm) | k_pe: qk_rope_head_dim floats (after RoPE) ]
//         (R1: 512 + 64 = 576 floats). k_pe keeps the checkpoint's interleaved pair order, rotated in
//         place (pairs (0,1), (2,3), ...); transformers de-interleaves q_pe and k_pe alike, so scores agree.
//
// Rows live in blocks of block_size; a sequence's block table maps position p to
//
//   block = table[p / block_size], slot = p % block_size,  row at ((layer * num_blocks + block) * block_size + slot)
//
//   table = [7, 2, 9]   positions 0..B-1 -> block 7, B..2B-1 -> block 2, 2B..3B-1 -> block 9
//
// Per head h, kv_b_proj's rows [h*(nope+v), h*(nope+v)+nope) are W_UK[h] (nope x kv_lora) and the next
// v rows are W_UV[h] (v x kv_lora). Two equal ways to attend:
//   naive:    k_nope_j = W_UK[h] c_j, v_j = W_UV[h] c_j; score = q_nope.k_nope_j + q_pe.k_pe_j
//   absorbed: q_lat = W_UK[h]^T q_nope;                 score = q_lat.c_j + q_pe.k_pe_j,
//             out = W_UV[h] (sum_j p_j c_j)   -- attends over the 576-wide rows, as the CUDA decode does.
#include "model/config/model_config.hpp"
#include "model/cpu/deepseek_ops.hpp"
#include "model/cpu/rope_yarn.hpp"

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace troupe::cpu {

enum class AttentionForm { absorbed, naive };

class PagedLatentCache {
 public:
  PagedLatentCache(std::uint32_t layers, std::uint32_t num_blocks, std::uint32_t block_size, std::uint32_t row);
  float* row(std::uint32_t layer, std::span<const std::uint32_t> table, std::uint32_t pos);
  const float* row(std::uint32_t layer, std::span<const std::uint32_t> table, std::uint32_t pos) const;
  std::uint32_t num_blocks() const { return num_blocks_; }
  std::uint32_t block_size() const { return block_size_; }
  std::uint32_t row_width() const { return row_; }

 private:
  std::size_t offset(std::uint32_t layer, std::span<const std::uint32_t> table, std::uint32_t pos) const;

  std::uint32_t layers_, num_blocks_, block_size_, row_;
  // Allocated when first written (one forward writes on one thread): num_blocks sized for a long
  // max-model-len costs memory only as sequences use it.
  std::vector<std::unique_ptr<float[]>> blocks_;
};

struct MlaWeights {           // all [out, in] row-major float32
  std::vector<float> q_a, q_a_norm, q_b;  // q_lora path (V3); empty without q_lora
  std::vector<float> q;                   // plain q_proj (V2-Lite)
  std::vector<float> kv_a, kv_a_norm, kv_b, o;
};

// The tokens of one forward: token t of chunk s sits at flat row offset[s] + i, position start[s] + i.
struct AttnBatch {
  std::vector<std::uint32_t> offset, count, start;
  std::vector<std::span<const std::uint32_t>> tables;
  std::size_t tokens() const { return offset.empty() ? 0 : offset.back() + count.back(); }
};

class Mla {
 public:
  // heads: the heads this tensor-parallel rank holds (0: all). Its weights then hold those heads' rows of
  // q_b/q_proj and kv_b_proj and their columns of o_proj; `out` is the rank's partial sum of o_proj.
  Mla(const ModelConfig& c, ThreadPool& pool, std::uint32_t heads = 0);
  // x: [tokens, hidden] (after input_layernorm) -> out: [tokens, hidden]. Writes the batch's rows into
  // `cache` first, so a chunk attends to its own tokens causally and to earlier positions from the cache.
  void forward(const MlaWeights& w, std::uint32_t layer, const AttnBatch& b, const float* x, float* out,
               PagedLatentCache& cache, AttentionForm form) const;

 private:
  void project(const MlaWeights& w, const AttnBatch& b, const float* x, std::vector<float>& q,
               std::vector<float>& kv) const;
  void attend_absorbed(const MlaWeights& w, std::uint32_t layer, const AttnBatch& b, const float* q,
                       const PagedLatentCache& cache, float* attn) const;
  void attend_naive(const MlaWeights& w, std::uint32_t layer, const AttnBatch& b, const float* q,
                    const PagedLatentCache& cache, float* attn) const;
  std::uint32_t hidden_, heads_, q_lora_, kv_lora_, nope_, rope_dim_, v_, qk_;
  float scale_;
  Rope rope_;
  ThreadPool& pool_;
};

// Softmax over scores[0..n) in place, max-subtracted, as torch does it in float32.
void softmax_inplace(float* scores, std::size_t n);

}  // namespace troupe::cpu
