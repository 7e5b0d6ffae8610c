#include "model/cpu/deepseek.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace troupe::cpu {

struct DeepseekCpuModel::Layer {
  MlaWeights attn;
  std::vector<float> input_norm, post_norm;
  bool moe = false;
  MlpWeights dense;
  MoeWeights experts;
};

namespace {

// The Checkpoint constructor borrows its checkpoint for the load through a WeightSource view.
WeightSource& lvalue(WeightSource&& w) { return w; }

}  // namespace

DeepseekCpuModel::DeepseekCpuModel(const ModelConfig& config, const Checkpoint& ckpt, std::uint32_t block_size,
                                   std::uint32_t num_blocks, unsigned threads, TensorParallel tp)
    : DeepseekCpuModel(config, lvalue(WeightSource::view(ckpt)), block_size, num_blocks, threads, std::move(tp)) {}

DeepseekCpuModel::DeepseekCpuModel(const ModelConfig& config, WeightSource& weights, std::uint32_t block_size,
                                   std::uint32_t num_blocks, unsigned threads, TensorParallel tp)
    : config_(config), block_size_(block_size), num_blocks_(num_blocks), tp_(std::move(tp)),
      pool_(std::make_unique<ThreadPool>(threads)) {
  if (!config_.is_deepseek()) throw std::invalid_argument("DeepseekCpuModel: not a DeepSeek V2/V3 config");
  if (block_size == 0 || num_blocks == 0) throw std::invalid_argument("DeepseekCpuModel: empty KV cache");
  if (config_.n_routed_experts && (config_.n_group == 0 || config_.n_routed_experts % config_.n_group))
    throw std::invalid_argument("DeepseekCpuModel: n_routed_experts is not a multiple of n_group");
  check_divisible();
  load(weights);
  mla_ = std::make_unique<Mla>(config_, *pool_, config_.num_attention_heads / tp_.world());
  cache_ = std::make_unique<PagedLatentCache>(config_.num_hidden_layers, num_blocks, block_size,
                                              config_.kv_lora_rank + config_.qk_rope_head_dim);
}

DeepseekCpuModel::~DeepseekCpuModel() = default;

// Uneven shards would make ranks disagree: refuse them up front, naming the dimension.
void DeepseekCpuModel::check_divisible() const {
  const ModelConfig& c = config_;
  const std::uint32_t tp = tp_.world();
  auto need = [&](std::uint64_t n, const char* what) {
    if (n % tp)
      throw CheckpointError("tensor-parallel-size " + std::to_string(tp) + " does not divide " + what + " (" +
                            std::to_string(n) + ")");
  };
  need(c.num_attention_heads, "num_attention_heads");
  if (c.first_k_dense_replace > 0 || c.n_routed_experts == 0) need(c.intermediate_size, "intermediate_size");
  if (c.n_routed_experts) {
    need(c.n_routed_experts, "n_routed_experts");
    need(std::uint64_t(c.moe_intermediate_size) * c.n_shared_experts, "moe_intermediate_size * n_shared_experts");
  }
}

std::vector<float> DeepseekCpuModel::whole(WeightSource& w, const std::string& name, std::vector<std::int64_t> shape,
                                           Init init) {
  auto v = w.get(name, shape, init);
  shapes_.emplace_back(name, std::move(shape));
  return v;
}

std::vector<float> DeepseekCpuModel::part(WeightSource& w, const std::string& name, std::vector<std::int64_t> shape,
                                          int dim, std::int64_t granule) {
  auto v = w.get_shard(name, shape, dim, tp_.rank, tp_.world(), granule);
  shape[std::size_t(dim)] /= tp_.world();
  shapes_.emplace_back(name, std::move(shape));
  return v;
}

// SwiGLU weights; split: gate/up by rows and down by columns (the dense MLP, the shared experts).
MlpWeights DeepseekCpuModel::load_mlp(WeightSource& w, const std::string& p, std::uint32_t inter, bool split) {
  const std::int64_t H = config_.hidden_size, I = inter;
  MlpWeights m;
  m.inter = split ? inter / tp_.world() : inter;
  m.gate = split ? part(w, p + "gate_proj.weight", {I, H}, 0, 1) : whole(w, p + "gate_proj.weight", {I, H});
  m.up = split ? part(w, p + "up_proj.weight", {I, H}, 0, 1) : whole(w, p + "up_proj.weight", {I, H});
  m.down = split ? part(w, p + "down_proj.weight", {H, I}, 1, 1) : whole(w, p + "down_proj.weight", {H, I});
  return m;
}

// Whole heads per rank: q_b (q_proj) rows of qk_nope + qk_rope per head, kv_b rows of qk_nope + v per head,
// o_proj columns of v per head.
MlaWeights DeepseekCpuModel::load_mla(WeightSource& ws, const std::string& p) {
  const ModelConfig& c = config_;
  const std::int64_t H = c.hidden_size, heads = c.num_attention_heads, qk = c.qk_nope_head_dim + c.qk_rope_head_dim;
  const std::int64_t kvr = c.kv_lora_rank, kvb = c.qk_nope_head_dim + c.v_head_dim;
  MlaWeights w;
  if (c.q_lora_rank) {
    const std::int64_t r = *c.q_lora_rank;
    w.q_a = whole(ws, p + "q_a_proj.weight", {r, H});
    w.q_a_norm = whole(ws, p + "q_a_layernorm.weight", {r}, Init::ones);
    w.q_b = part(ws, p + "q_b_proj.weight", {heads * qk, r}, 0, qk);
  } else {
    w.q = part(ws, p + "q_proj.weight", {heads * qk, H}, 0, qk);
  }
  w.kv_a = whole(ws, p + "kv_a_proj_with_mqa.weight", {kvr + c.qk_rope_head_dim, H});
  w.kv_a_norm = whole(ws, p + "kv_a_layernorm.weight", {kvr}, Init::ones);
  w.kv_b = part(ws, p + "kv_b_proj.weight", {heads * kvb, kvr}, 0, kvb);
  w.o = part(ws, p + "o_proj.weight", {H, heads * c.v_head_dim}, 1, c.v_head_dim);
  return w;
}

void DeepseekCpuModel::load(WeightSource& w) {
  const ModelConfig& c = config_;
  const std::int64_t H = c.hidden_size, V = c.vocab_size;
  embed_ = whole(w, "model.embed_tokens.weight", {V, H});
  final_norm_ = whole(w, "model.norm.weight", {H}, Init::ones);
  lm_head_ = c.tie_word_embeddings ? embed_ : whole(w, "lm_head.weight", {V, H});
  layers_.resize(c.num_hidden_layers);
  const std::uint32_t per_rank = c.n_routed_experts / tp_.world();
  for (std::uint32_t l = 0; l < c.num_hidden_layers; ++l) {
    Layer& L = layers_[l];
    const std::string p = "model.layers." + std::to_string(l) + ".";
    L.attn = load_mla(w, p + "self_attn.");
    L.input_norm = whole(w, p + "input_layernorm.weight", {H}, Init::ones);
    L.post_norm = whole(w, p + "post_attention_layernorm.weight", {H}, Init::ones);
    L.moe = c.is_moe_layer(l);
    if (!L.moe) {
      L.dense = load_mlp(w, p + "mlp.", c.intermediate_size, true);
      continue;
    }
    const std::int64_t E = c.n_routed_experts;
    L.experts.router = whole(w, p + "mlp.gate.weight", {E, H});
    if (c.topk_method == "noaux_tc")
      L.experts.bias = whole(w, p + "mlp.gate.e_score_correction_bias", {E}, Init::zeros);
    L.experts.first_expert = tp_.rank * per_rank;
    for (std::uint32_t e = L.experts.first_expert; e < L.experts.first_expert + per_rank; ++e)
      L.experts.experts.push_back(load_mlp(w, p + "mlp.experts." + std::to_string(e) + ".", c.moe_intermediate_size, false));
    if (c.n_shared_experts)
      L.experts.shared = load_mlp(w, p + "mlp.shared_experts.", c.moe_intermediate_size * c.n_shared_experts, true);
  }
  w.done();
}

void DeepseekCpuModel::validate(std::span<const SeqChunk> chunks) const {
  for (std::size_t s = 0; s < chunks.size(); ++s) {
    const SeqChunk& ch = chunks[s];
    const std::string where = "DeepseekCpuModel: chunk " + std::to_string(s) + ": ";
    if (ch.tokens.empty()) continue;  // an empty chunk computes nothing and gets empty logits
    for (std::int32_t t : ch.tokens)
      if (t < 0 || std::uint32_t(t) >= config_.vocab_size)
        throw std::invalid_argument(where + "token id " + std::to_string(t) + " outside the vocabulary");
    const std::size_t end = std::size_t(ch.start_pos) + ch.tokens.size();
    const std::size_t need = (end + block_size_ - 1) / block_size_;
    if (ch.block_table.size() < need)
      throw std::invalid_argument(where + "block table has " + std::to_string(ch.block_table.size()) +
                                  " blocks, positions up to " + std::to_string(end) + " need " + std::to_string(need));
    for (std::size_t i = 0; i < need; ++i)
      if (ch.block_table[i] >= num_blocks_)
        throw std::invalid_argument(where + "block id " + std::to_string(ch.block_table[i]) + " out of range");
  }
}

void DeepseekCpuModel::layer_forward(std::uint32_t l, const AttnBatch& b, std::vector<float>& x,
                                     AttentionForm form) {
  const Layer& L = layers_[l];
  const std::size_t T = b.tokens(), H = config_.hidden_size;
  const float eps = float(config_.rms_norm_eps);
  std::vector<float> h = x, y(T * H);
  rms_norm_rows(h.data(), T, H, H, L.input_norm.data(), eps);
  mla_->forward(L.attn, l, b, h.data(), y.data(), *cache_, form);
  tp_.all_reduce(y.data(), y.size());  // each rank's o_proj covers its heads
  for (std::size_t i = 0; i < x.size(); ++i) x[i] += y[i];
  h = x;
  rms_norm_rows(h.data(), T, H, H, L.post_norm.data(), eps);
  if (L.moe)
    moe_forward(*pool_, config_, L.experts, h.data(), T, y.data());
  else
    mlp_forward(*pool_, L.dense, config_.hidden_size, h.data(), T, y.data());
  tp_.all_reduce(y.data(), y.size());  // its down_proj columns, or its experts and shared-expert columns
  for (std::size_t i = 0; i < x.size(); ++i) x[i] += y[i];
}

std::vector<std::vector<float>> DeepseekCpuModel::forward(std::span<const SeqChunk> chunks,
                                                          const ForwardOptions& opt) {
  validate(chunks);
  AttnBatch b;
  std::uint32_t total = 0;
  for (const SeqChunk& ch : chunks) {
    b.offset.push_back(total);
    b.count.push_back(std::uint32_t(ch.tokens.size()));
    b.start.push_back(ch.start_pos);
    b.tables.push_back(ch.block_table);
    total += std::uint32_t(ch.tokens.size());
  }
  const std::size_t H = config_.hidden_size, V = config_.vocab_size;
  std::vector<float> x(total * H);
  std::size_t t = 0;
  for (const SeqChunk& ch : chunks)
    for (std::int32_t tok : ch.tokens) std::copy_n(embed_.data() + std::size_t(tok) * H, H, x.data() + H * t++);
  for (std::uint32_t l = 0; l < config_.num_hidden_layers; ++l) layer_forward(l, b, x, opt.attention);

  // Only the rows whose logits are wanted go through the final norm and lm_head.
  std::vector<std::size_t> rows;
  for (std::size_t s = 0; s < chunks.size(); ++s)
    for (std::uint32_t i = opt.all_logits || b.count[s] == 0 ? 0 : b.count[s] - 1; i < b.count[s]; ++i)
      rows.push_back(b.offset[s] + i);
  std::vector<float> h(rows.size() * H), logits(rows.size() * V);
  for (std::size_t r = 0; r < rows.size(); ++r) std::copy_n(x.data() + rows[r] * H, H, h.data() + r * H);
  rms_norm_rows(h.data(), rows.size(), H, H, final_norm_.data(), float(config_.rms_norm_eps));
  linear(*pool_, h.data(), rows.size(), H, lm_head_.data(), V, logits.data());
  std::vector<std::vector<float>> out(chunks.size());
  std::size_t r = 0;
  for (std::size_t s = 0; s < chunks.size(); ++s) {
    const std::size_t n = opt.all_logits ? b.count[s] : std::min<std::size_t>(b.count[s], 1);
    out[s].assign(logits.begin() + r * V, logits.begin() + (r + n) * V);
    r += n;
  }
  return out;
}

}  // namespace troupe::cpu
