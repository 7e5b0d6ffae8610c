#include "model/cpu/llama.hpp"

#include "model/checkpoint/shard.hpp"

#include <cmath>
#include <stdexcept>

namespace troupe::cpu {

std::vector<float> llama_inv_freq(const ModelConfig& c) {
  std::uint32_t dim = c.head_dim;
  std::vector<float> f(dim / 2);
  // float32 as transformers computes it: base ** (arange(0, dim, 2) / dim)
  for (std::uint32_t i = 0; i < dim / 2; ++i) f[i] = 1.0f / std::pow(float(c.rope_theta), float(2 * i) / float(dim));
  const auto& s = c.rope_scaling;
  if (s.type == "linear") {
    for (auto& x : f) x /= float(s.factor);
  } else if (s.type == "llama3") {
    double old_len = s.original_max_position_embeddings;
    double low_wavelen = old_len / s.low_freq_factor, high_wavelen = old_len / s.high_freq_factor;
    for (auto& x : f) {
      double wavelen = 2 * M_PI / x;
      if (wavelen < high_wavelen) continue;  // high frequencies keep their rotation
      if (wavelen > low_wavelen) {
        x = float(x / s.factor);
      } else {
        double smooth = (old_len / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
        x = float((1 - smooth) * x / s.factor + smooth * x);
      }
    }
  } else if (!s.type.empty()) {
    throw std::invalid_argument("llama cpu model: rope_scaling type '" + s.type + "' is not supported");
  }
  return f;
}

PagedKv::PagedKv(std::uint32_t layers, std::uint32_t block_size, std::uint32_t num_blocks, std::uint32_t kv_dim)
    : layers_(layers), block_size_(block_size), kv_dim_(kv_dim), blocks_(num_blocks) {}

float* PagedKv::k(std::uint32_t block, std::uint32_t layer, std::uint32_t slot) {
  auto& b = blocks_.at(block);
  if (!b) b = std::make_unique<float[]>(std::size_t(layers_) * block_size_ * 2 * kv_dim_);
  return b.get() + (std::size_t(layer) * block_size_ + slot) * 2 * kv_dim_;
}

const float* PagedKv::k(std::uint32_t block, std::uint32_t layer, std::uint32_t slot) const {
  const auto& b = blocks_.at(block);
  if (!b) throw std::logic_error("KV block " + std::to_string(block) + " read before it was written");
  return b.get() + (std::size_t(layer) * block_size_ + slot) * 2 * kv_dim_;
}

struct LlamaModel::Batch {
  std::size_t rows = 0;
  std::vector<std::int64_t> pos;            // per row
  std::vector<const Chunk*> chunk;          // per row
  std::vector<std::size_t> logits_rows;     // rows whose logits are returned, in chunk order
};

namespace {
// This rank's count of `n` units (heads, MLP columns); shard_range refuses an uneven split by name.
std::uint32_t share(std::uint32_t n, const TensorParallel& tp, const char* what) {
  try {
    return std::uint32_t(shard_range(n, tp.rank, tp.world()).size);
  } catch (const CheckpointError&) {
    throw CheckpointError(std::string("tensor-parallel-size ") + std::to_string(tp.world()) + " does not divide " +
                          what + " (" + std::to_string(n) + ")");
  }
}
}  // namespace

LlamaModel::LlamaModel(const ModelConfig& config, WeightSource& weights, std::uint32_t block_size,
                       std::uint32_t num_blocks, unsigned threads, TensorParallel tp)
    : cfg_(config),
      tp_(std::move(tp)),
      hd_(config.head_dim),
      heads_(share(config.num_attention_heads, tp_, "num_attention_heads")),
      kv_heads_(share(config.num_key_value_heads, tp_, "num_key_value_heads")),
      ff_(share(config.intermediate_size, tp_, "intermediate_size")),
      q_dim_(heads_ * config.head_dim),
      kv_dim_(kv_heads_ * config.head_dim),
      threads_(std::make_unique<ThreadPool>(threads)),
      kv_(config.num_hidden_layers, block_size, num_blocks, kv_heads_ * config.head_dim) {
  if (cfg_.arch != Arch::llama && cfg_.arch != Arch::qwen2)
    throw std::invalid_argument("llama cpu model: architecture " + cfg_.architecture + " is not Llama or Qwen2");
  if (block_size == 0) throw std::invalid_argument("llama cpu model: block size 0");
  inv_freq_ = llama_inv_freq(cfg_);
  load(weights);
}

// This rank's rows (dim 0) or columns (dim 1) in whole units of `granule`, sliced at load time.
std::vector<float> LlamaModel::shard(WeightSource& w, const std::string& name, std::vector<std::int64_t> shape,
                                     int dim, std::int64_t granule, Init init) const {
  return w.get_shard(name, shape, dim, tp_.rank, tp_.world(), granule, init);
}

void LlamaModel::load(WeightSource& w) {
  std::int64_t d = cfg_.hidden_size, v = cfg_.vocab_size, ff = cfg_.intermediate_size, hd = hd_;
  std::int64_t q = std::int64_t(cfg_.num_attention_heads) * hd, kv = std::int64_t(cfg_.num_key_value_heads) * hd;
  embed_ = w.get("model.embed_tokens.weight", {v, d});
  final_norm_ = w.get("model.norm.weight", {d}, Init::ones);
  if (!cfg_.tie_word_embeddings) lm_head_ = w.get("lm_head.weight", {v, d});
  layers_.resize(cfg_.num_hidden_layers);
  for (std::uint32_t i = 0; i < cfg_.num_hidden_layers; ++i) {
    std::string p = "model.layers." + std::to_string(i) + ".";
    Layer& L = layers_[i];
    L.attn_norm = w.get(p + "input_layernorm.weight", {d}, Init::ones);
    L.mlp_norm = w.get(p + "post_attention_layernorm.weight", {d}, Init::ones);
    L.wq = shard(w, p + "self_attn.q_proj.weight", {q, d}, 0, hd);
    L.wk = shard(w, p + "self_attn.k_proj.weight", {kv, d}, 0, hd);
    L.wv = shard(w, p + "self_attn.v_proj.weight", {kv, d}, 0, hd);
    L.wo = shard(w, p + "self_attn.o_proj.weight", {d, q}, 1, hd);
    if (cfg_.attention_bias) {
      L.bq = shard(w, p + "self_attn.q_proj.bias", {q}, 0, hd, Init::zeros);
      L.bk = shard(w, p + "self_attn.k_proj.bias", {kv}, 0, hd, Init::zeros);
      L.bv = shard(w, p + "self_attn.v_proj.bias", {kv}, 0, hd, Init::zeros);
    }
    L.gate = shard(w, p + "mlp.gate_proj.weight", {ff, d}, 0, 1);
    L.up = shard(w, p + "mlp.up_proj.weight", {ff, d}, 0, 1);
    L.down = shard(w, p + "mlp.down_proj.weight", {d, ff}, 1, 1);
  }
  w.done();
}

void LlamaModel::validate(std::span<const Chunk> chunks) const {
  for (const auto& c : chunks) {
    for (auto t : c.tokens)
      if (t < 0 || std::uint32_t(t) >= cfg_.vocab_size)
        throw std::invalid_argument("token id " + std::to_string(t) + " is outside the vocabulary");
    std::size_t end = c.start_pos + c.tokens.size();
    if (c.block_table.size() * kv_.block_size() < end)
      throw std::invalid_argument("block table of " + std::to_string(c.block_table.size()) + " blocks cannot hold " +
                                  std::to_string(end) + " tokens");
    for (auto b : c.block_table)
      if (b >= kv_.num_blocks()) throw std::invalid_argument("block id " + std::to_string(b) + " out of range");
  }
}

// Half-split rotation (HF rotate_half): pairs (i, i + head_dim/2).
void LlamaModel::rope(float* v, std::size_t heads, std::int64_t pos) const {
  std::size_t half = hd_ / 2;
  for (std::size_t i = 0; i < half; ++i) {
    float angle = float(pos) * inv_freq_[i];
    float c = std::cos(angle), s = std::sin(angle);
    for (std::size_t h = 0; h < heads; ++h) {
      float* x = v + h * hd_;
      float x0 = x[i], x1 = x[i + half];
      x[i] = x0 * c - x1 * s;
      x[i + half] = x1 * c + x0 * s;
    }
  }
}

void LlamaModel::attention(std::uint32_t l, const Batch& b, std::vector<float>& x) {
  const Layer& L = layers_[l];
  std::size_t d = cfg_.hidden_size, T = b.rows;
  std::vector<float> xn(T * d), q(T * q_dim_), k(T * kv_dim_), v(T * kv_dim_), att(T * q_dim_), o(T * d);
  for (std::size_t t = 0; t < T; ++t)
    dense::rms_norm(&x[t * d], L.attn_norm.data(), d, float(cfg_.rms_norm_eps), &xn[t * d]);
  auto bias = [](const std::vector<float>& bv) { return bv.empty() ? nullptr : bv.data(); };
  dense::linear(*threads_, xn.data(), T, d, L.wq.data(), q_dim_, q.data(), bias(L.bq));
  dense::linear(*threads_, xn.data(), T, d, L.wk.data(), kv_dim_, k.data(), bias(L.bk));
  dense::linear(*threads_, xn.data(), T, d, L.wv.data(), kv_dim_, v.data(), bias(L.bv));
  std::uint32_t bs = kv_.block_size();
  for (std::size_t t = 0; t < T; ++t) {
    rope(&q[t * q_dim_], heads_, b.pos[t]);
    rope(&k[t * kv_dim_], kv_heads_, b.pos[t]);
    auto p = std::uint32_t(b.pos[t]);
    float* dst = kv_.k(b.chunk[t]->block_table[p / bs], l, p % bs);
    std::copy_n(&k[t * kv_dim_], kv_dim_, dst);
    std::copy_n(&v[t * kv_dim_], kv_dim_, dst + kv_dim_);
  }
  std::size_t H = heads_, group = H / kv_heads_;
  float scale = 1.0f / std::sqrt(float(hd_));
  threads_->parallel_for(T * H, [&](std::size_t begin, std::size_t end) {
    std::vector<float> score;
    for (std::size_t th = begin; th < end; ++th) {
      std::size_t t = th / H, h = th % H, kvh = h / group, n = std::size_t(b.pos[t]) + 1;
      const float* qh = &q[t * q_dim_ + h * hd_];
      const auto& table = b.chunk[t]->block_table;
      score.resize(n);
      float mx = -INFINITY;
      for (std::size_t j = 0; j < n; ++j) {
        score[j] = dense::dot(qh, kv_.k(table[j / bs], l, j % bs) + kvh * hd_, hd_) * scale;
        mx = std::max(mx, score[j]);
      }
      float sum = 0;
      for (auto& s : score) sum += (s = std::exp(s - mx));
      float* out = &att[t * q_dim_ + h * hd_];
      std::fill_n(out, hd_, 0.0f);
      for (std::size_t j = 0; j < n; ++j) {
        const float* vj = kv_.v(table[j / bs], l, j % bs) + kvh * hd_;
        float p = score[j] / sum;
        for (std::size_t e = 0; e < hd_; ++e) out[e] += p * vj[e];
      }
    }
  });
  dense::linear(*threads_, att.data(), T, q_dim_, L.wo.data(), d, o.data());
  tp_.all_reduce(o.data(), o.size());  // each rank holds its heads' share of o_proj
  for (std::size_t i = 0; i < x.size(); ++i) x[i] += o[i];
}

void LlamaModel::mlp(std::uint32_t l, const Batch& b, std::vector<float>& x) {
  const Layer& L = layers_[l];
  std::size_t d = cfg_.hidden_size, T = b.rows, ff = ff_;
  std::vector<float> xn(T * d), g(T * ff), u(T * ff), o(T * d);
  for (std::size_t t = 0; t < T; ++t)
    dense::rms_norm(&x[t * d], L.mlp_norm.data(), d, float(cfg_.rms_norm_eps), &xn[t * d]);
  dense::linear(*threads_, xn.data(), T, d, L.gate.data(), ff, g.data());
  dense::linear(*threads_, xn.data(), T, d, L.up.data(), ff, u.data());
  for (std::size_t i = 0; i < g.size(); ++i) g[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
  dense::linear(*threads_, g.data(), T, ff, L.down.data(), d, o.data());
  tp_.all_reduce(o.data(), o.size());  // each rank holds its columns' share of down_proj
  for (std::size_t i = 0; i < x.size(); ++i) x[i] += o[i];
}

std::vector<std::vector<float>> LlamaModel::forward(std::span<const Chunk> chunks) {
  validate(chunks);
  Batch b;
  for (const auto& c : chunks) {
    for (std::size_t i = 0; i < c.tokens.size(); ++i) {
      b.pos.push_back(std::int64_t(c.start_pos + i));
      b.chunk.push_back(&c);
    }
    if (c.all_logits)
      for (std::size_t i = c.tokens.size(); i > 0; --i) b.logits_rows.push_back(b.pos.size() - i);
    else if (c.wants_logits && !c.tokens.empty())
      b.logits_rows.push_back(b.pos.size() - 1);
  }
  b.rows = b.pos.size();
  std::size_t d = cfg_.hidden_size;
  std::vector<float> x(b.rows * d);
  std::size_t row = 0;
  for (const auto& c : chunks)
    for (auto t : c.tokens) std::copy_n(&embed_[std::size_t(t) * d], d, &x[d * row++]);
  for (std::uint32_t l = 0; l < cfg_.num_hidden_layers; ++l) {
    attention(l, b, x);
    mlp(l, b, x);
  }
  std::size_t R = b.logits_rows.size();
  std::vector<float> xn(R * d), logits(R * cfg_.vocab_size);
  for (std::size_t r = 0; r < R; ++r)
    dense::rms_norm(&x[b.logits_rows[r] * d], final_norm_.data(), d, float(cfg_.rms_norm_eps), &xn[r * d]);
  const auto& head = lm_head_.empty() ? embed_ : lm_head_;
  dense::linear(*threads_, xn.data(), R, d, head.data(), cfg_.vocab_size, logits.data());
  std::vector<std::vector<float>> out(R);
  for (std::size_t r = 0; r < R; ++r)
    out[r].assign(logits.begin() + std::ptrdiff_t(r * cfg_.vocab_size),
                  logits.begin() + std::ptrdiff_t((r + 1) * cfg_.vocab_size));
  return out;
}

}  // namespace troupe::cpu
