#include "model/cpu/mla.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

namespace troupe::cpu {

namespace {
// transformers builds q_a_layernorm and kv_a_layernorm with the default eps, not config.rms_norm_eps.
constexpr float kLatentNormEps = 1e-6f;

// flat token index -> (chunk, index inside the chunk)
std::vector<std::pair<std::uint32_t, std::uint32_t>> token_owners(const AttnBatch& b) {
  std::vector<std::pair<std::uint32_t, std::uint32_t>> owner(b.tokens());
  for (std::uint32_t s = 0; s < b.offset.size(); ++s)
    for (std::uint32_t i = 0; i < b.count[s]; ++i) owner[b.offset[s] + i] = {s, i};
  return owner;
}
}  // namespace

PagedLatentCache::PagedLatentCache(std::uint32_t layers, std::uint32_t num_blocks, std::uint32_t block_size,
                                   std::uint32_t row)
    : layers_(layers), num_blocks_(num_blocks), block_size_(block_size), row_(row), blocks_(num_blocks) {}

// The row's offset inside its block ([layer][slot][row]); throws for a position without a valid block.
std::size_t PagedLatentCache::offset(std::uint32_t layer, std::span<const std::uint32_t> table,
                                     std::uint32_t pos) const {
  const std::uint32_t idx = pos / block_size_;
  if (idx >= table.size() || table[idx] >= num_blocks_)
    throw std::out_of_range("deepseek cpu: position " + std::to_string(pos) + " has no valid block in its table");
  return (std::size_t(layer) * block_size_ + pos % block_size_) * row_;
}

float* PagedLatentCache::row(std::uint32_t layer, std::span<const std::uint32_t> table, std::uint32_t pos) {
  const std::size_t off = offset(layer, table, pos);
  auto& b = blocks_[table[pos / block_size_]];
  if (!b) b = std::make_unique<float[]>(std::size_t(layers_) * block_size_ * row_);  // zeroed
  return b.get() + off;
}

const float* PagedLatentCache::row(std::uint32_t layer, std::span<const std::uint32_t> table,
                                   std::uint32_t pos) const {
  const std::size_t off = offset(layer, table, pos);
  const auto& b = blocks_[table[pos / block_size_]];
  if (!b) throw std::logic_error("deepseek cpu: KV block " + std::to_string(table[pos / block_size_]) +
                                 " read before it was written");
  return b.get() + off;
}

void softmax_inplace(float* s, std::size_t n) {
  const float m = *std::max_element(s, s + n);
  double sum = 0;
  for (std::size_t j = 0; j < n; ++j) sum += (s[j] = std::exp(s[j] - m));
  const float inv = float(1.0 / sum);
  for (std::size_t j = 0; j < n; ++j) s[j] *= inv;
}

Mla::Mla(const ModelConfig& c, ThreadPool& pool, std::uint32_t heads)
    : hidden_(c.hidden_size), heads_(heads ? heads : c.num_attention_heads), q_lora_(c.q_lora_rank.value_or(0)),
      kv_lora_(c.kv_lora_rank), nope_(c.qk_nope_head_dim), rope_dim_(c.qk_rope_head_dim), v_(c.v_head_dim),
      qk_(c.qk_nope_head_dim + c.qk_rope_head_dim), scale_(float(softmax_scale(c))), rope_(make_rope(c)),
      pool_(pool) {}

void Mla::project(const MlaWeights& w, const AttnBatch& b, const float* x, std::vector<float>& q,
                  std::vector<float>& kv) const {
  const std::size_t T = b.tokens(), row = kv_lora_ + rope_dim_;
  q.assign(T * heads_ * qk_, 0.0f);
  if (q_lora_) {
    std::vector<float> qa(T * q_lora_);
    linear(pool_, x, T, hidden_, w.q_a.data(), q_lora_, qa.data());
    rms_norm_rows(qa.data(), T, q_lora_, q_lora_, w.q_a_norm.data(), kLatentNormEps);
    linear(pool_, qa.data(), T, q_lora_, w.q_b.data(), heads_ * qk_, q.data());
  } else {
    linear(pool_, x, T, hidden_, w.q.data(), heads_ * qk_, q.data());
  }
  kv.assign(T * row, 0.0f);
  linear(pool_, x, T, hidden_, w.kv_a.data(), row, kv.data());
  rms_norm_rows(kv.data(), T, kv_lora_, row, w.kv_a_norm.data(), kLatentNormEps);
  for (std::uint32_t s = 0; s < b.offset.size(); ++s)
    for (std::uint32_t i = 0; i < b.count[s]; ++i) {
      const std::size_t t = b.offset[s] + i;
      const std::uint32_t pos = b.start[s] + i;
      rope_.apply(kv.data() + t * row + kv_lora_, pos);
      for (std::uint32_t h = 0; h < heads_; ++h) rope_.apply(q.data() + (t * heads_ + h) * qk_ + nope_, pos);
    }
}

void Mla::forward(const MlaWeights& w, std::uint32_t layer, const AttnBatch& b, const float* x, float* out,
                  PagedLatentCache& cache, AttentionForm form) const {
  std::vector<float> q, kv;
  project(w, b, x, q, kv);
  const std::size_t row = kv_lora_ + rope_dim_;
  for (std::uint32_t s = 0; s < b.offset.size(); ++s)
    for (std::uint32_t i = 0; i < b.count[s]; ++i)
      std::memcpy(cache.row(layer, b.tables[s], b.start[s] + i), kv.data() + (b.offset[s] + i) * row,
                  row * sizeof(float));
  std::vector<float> attn(b.tokens() * heads_ * v_);
  if (form == AttentionForm::absorbed)
    attend_absorbed(w, layer, b, q.data(), cache, attn.data());
  else
    attend_naive(w, layer, b, q.data(), cache, attn.data());
  linear(pool_, attn.data(), b.tokens(), heads_ * v_, w.o.data(), hidden_, out);
}

void Mla::attend_absorbed(const MlaWeights& w, std::uint32_t layer, const AttnBatch& b, const float* q,
                          const PagedLatentCache& cache, float* attn) const {
  const auto owner = token_owners(b);
  const std::size_t kvb_rows = nope_ + v_;
  pool_.parallel_for(owner.size() * heads_, [&](std::size_t i0, std::size_t i1) {
    std::vector<float> q_lat(kv_lora_), o_lat(kv_lora_), scores;
    for (std::size_t item = i0; item < i1; ++item) {
      const std::size_t t = item / heads_, h = item % heads_;
      const auto [s, i] = owner[t];
      const std::uint32_t n = b.start[s] + i + 1;  // causal: positions 0..pos
      const float* qh = q + (t * heads_ + h) * qk_;
      const float* wkv = w.kv_b.data() + h * kvb_rows * kv_lora_;  // W_UK[h] then W_UV[h]
      std::fill(q_lat.begin(), q_lat.end(), 0.0f);
      for (std::uint32_t d = 0; d < nope_; ++d)
        for (std::uint32_t c = 0; c < kv_lora_; ++c) q_lat[c] += qh[d] * wkv[d * kv_lora_ + c];
      scores.resize(n);
      for (std::uint32_t j = 0; j < n; ++j) {
        const float* r = cache.row(layer, b.tables[s], j);
        scores[j] = (dot(q_lat.data(), r, kv_lora_) + dot(qh + nope_, r + kv_lora_, rope_dim_)) * scale_;
      }
      softmax_inplace(scores.data(), n);
      std::fill(o_lat.begin(), o_lat.end(), 0.0f);
      for (std::uint32_t j = 0; j < n; ++j) {
        const float* r = cache.row(layer, b.tables[s], j);
        for (std::uint32_t c = 0; c < kv_lora_; ++c) o_lat[c] += scores[j] * r[c];
      }
      for (std::uint32_t e = 0; e < v_; ++e)
        attn[(t * heads_ + h) * v_ + e] = dot(wkv + (nope_ + e) * kv_lora_, o_lat.data(), kv_lora_);
    }
  });
}

void Mla::attend_naive(const MlaWeights& w, std::uint32_t layer, const AttnBatch& b, const float* q,
                       const PagedLatentCache& cache, float* attn) const {
  const std::size_t kvb_rows = nope_ + v_, dec_w = heads_ * kvb_rows;
  for (std::uint32_t s = 0; s < b.offset.size(); ++s) {
    if (b.count[s] == 0) continue;
    // Decompress every cached position of this sequence once: dec[j] = kv_b_proj(c_j) = per head [k_nope | v].
    const std::uint32_t P = b.start[s] + b.count[s];
    std::vector<float> lat(std::size_t(P) * kv_lora_), dec(std::size_t(P) * dec_w);
    for (std::uint32_t j = 0; j < P; ++j)
      std::memcpy(lat.data() + std::size_t(j) * kv_lora_, cache.row(layer, b.tables[s], j), kv_lora_ * sizeof(float));
    linear(pool_, lat.data(), P, kv_lora_, w.kv_b.data(), dec_w, dec.data());
    pool_.parallel_for(std::size_t(b.count[s]) * heads_, [&](std::size_t i0, std::size_t i1) {
      std::vector<float> scores;
      for (std::size_t item = i0; item < i1; ++item) {
        const std::size_t i = item / heads_, h = item % heads_, t = b.offset[s] + i;
        const std::uint32_t n = b.start[s] + std::uint32_t(i) + 1;
        const float* qh = q + (t * heads_ + h) * qk_;
        scores.resize(n);
        for (std::uint32_t j = 0; j < n; ++j) {
          const float* k = dec.data() + std::size_t(j) * dec_w + h * kvb_rows;
          const float* pe = cache.row(layer, b.tables[s], j) + kv_lora_;
          scores[j] = (dot(qh, k, nope_) + dot(qh + nope_, pe, rope_dim_)) * scale_;
        }
        softmax_inplace(scores.data(), n);
        float* o = attn + (t * heads_ + h) * v_;
        std::fill(o, o + v_, 0.0f);
        for (std::uint32_t j = 0; j < n; ++j) {
          const float* v = dec.data() + std::size_t(j) * dec_w + h * kvb_rows + nope_;
          for (std::uint32_t e = 0; e < v_; ++e) o[e] += scores[j] * v[e];
        }
      }
    });
  }
}

}  // namespace troupe::cpu
