#include "model/cuda/llama_cuda.hpp"

#include "kernels/core/ops.hpp"
#include "kernels/core/paged_attention.hpp"
#include "model/cpu/llama.hpp"

#include <spdlog/spdlog.h>

#include <cmath>

namespace troupe::cuda {

LlamaCudaModel::LlamaCudaModel(const CudaModelOptions& opt, const ModelConfig& cfg)
    : CudaModel(opt, cfg),
      hd_(int(cfg.head_dim)),
      heads_(int(cfg.num_attention_heads)),
      kv_heads_(int(cfg.num_key_value_heads)),
      ff_(int(cfg.intermediate_size)),
      q_dim_(heads_ * hd_),
      kv_dim_(kv_heads_ * hd_),
      qkv_dim_(q_dim_ + 2 * kv_dim_) {
  if (opt.world > 1)
    throw std::runtime_error("cuda backend: tensor-parallel-size > 1 needs the NCCL all-reduce, not built yet");
  {
    WeightLoader w(opt.model_dir, opt.dummy_weights, opt.seed, false, opt.rank, opt.world, weights_, stream_);
    load(w);
    w.done();
  }
  upload_cos_sin(cpu::llama_inv_freq(cfg_), 1.0f);
  const std::size_t per_block = std::size_t(cfg_.num_hidden_layers) * 2 * opt.block_size * std::size_t(kv_dim_) * 2;
  kernels::reserve_paged_attention_workspace();  // before the KV cache takes the memory; graphs need its address
  finish_init(per_block);
  spdlog::info("cuda {}: {} layers, hidden {}, heads {}/{} x {}, ffn {}, vocab {}", cfg_.architecture,
               cfg_.num_hidden_layers, cfg_.hidden_size, heads_, kv_heads_, hd_, ff_, cfg_.vocab_size);
}

LlamaCudaModel::~LlamaCudaModel() = default;

void LlamaCudaModel::load(WeightLoader& w) {
  const std::int64_t d = cfg_.hidden_size, v = cfg_.vocab_size, ff = ff_, q = q_dim_, kv = kv_dim_;
  embed_ = w.bf16_tensor("model.embed_tokens.weight", {v, d});
  final_norm_ = w.bf16_tensor("model.norm.weight", {d}, Init::ones);
  lm_head_.n = int(v);
  lm_head_.k = int(d);
  lm_head_.w = cfg_.tie_word_embeddings ? embed_ : w.bf16_tensor("lm_head.weight", {v, d});
  layers_.resize(cfg_.num_hidden_layers);
  for (std::uint32_t i = 0; i < cfg_.num_hidden_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    Layer& L = layers_[i];
    L.attn_norm = w.bf16_tensor(p + "input_layernorm.weight", {d}, Init::ones);
    L.mlp_norm = w.bf16_tensor(p + "post_attention_layernorm.weight", {d}, Init::ones);
    // q | k | v stacked by rows into one [q + 2 kv, d] weight: one GEMM per layer.
    weights_.emplace_back(std::size_t((q + 2 * kv) * d) * 2);
    bf16* qkv = weights_.back().get<bf16>();
    w.bf16_into(p + "self_attn.q_proj.weight", {q, d}, qkv);
    w.bf16_into(p + "self_attn.k_proj.weight", {kv, d}, qkv + q * d);
    w.bf16_into(p + "self_attn.v_proj.weight", {kv, d}, qkv + (q + kv) * d);
    L.qkv = {qkv, nullptr, nullptr, int(q + 2 * kv), int(d)};
    if (cfg_.attention_bias) {
      weights_.emplace_back(std::size_t(q + 2 * kv) * 2);
      bf16* b = weights_.back().get<bf16>();
      w.bf16_into(p + "self_attn.q_proj.bias", {q}, b, Init::zeros);
      w.bf16_into(p + "self_attn.k_proj.bias", {kv}, b + q, Init::zeros);
      w.bf16_into(p + "self_attn.v_proj.bias", {kv}, b + q + kv, Init::zeros);
      L.qkv_bias = b;
    }
    L.o = w.linear(p + "self_attn.o_proj.weight", d, q);
    weights_.emplace_back(std::size_t(2 * ff * d) * 2);
    bf16* gu = weights_.back().get<bf16>();
    w.bf16_into(p + "mlp.gate_proj.weight", {ff, d}, gu);
    w.bf16_into(p + "mlp.up_proj.weight", {ff, d}, gu + ff * d);
    L.gate_up = {gu, nullptr, nullptr, int(2 * ff), int(d)};
    L.down = w.linear(p + "mlp.down_proj.weight", d, ff);
    for (const Linear* l : {&L.o, &L.down})
      if (l->is_fp8()) max_k_ = std::max(max_k_, l->k), max_fp8_n_ = std::max(max_fp8_n_, l->n);
  }
}

template <class A>
void LlamaCudaModel::layout(A& a) {
  const std::size_t T = std::size_t(max_tokens_), d = cfg_.hidden_size;
  a.template take<bf16>(T * d);
  a.template take<bf16>(T * std::size_t(qkv_dim_));
  a.template take<bf16>(T * std::size_t(q_dim_));
  a.template take<bf16>(T * 2 * std::size_t(ff_));
  a.template take<bf16>(T * std::size_t(ff_));
  a.template take<bf16>(T * d);
}

void LlamaCudaModel::plan_activations(ArenaPlan& plan) { layout(plan); }

void LlamaCudaModel::take_activations(Arena& a) {
  const std::size_t T = std::size_t(max_tokens_), d = cfg_.hidden_size;
  h_ = a.take<bf16>(T * d);
  qkv_ = a.take<bf16>(T * std::size_t(qkv_dim_));
  attn_ = a.take<bf16>(T * std::size_t(q_dim_));
  gate_up_ = a.take<bf16>(T * 2 * std::size_t(ff_));
  act_ = a.take<bf16>(T * std::size_t(ff_));
  addend_ = a.take<bf16>(T * d);
}

void LlamaCudaModel::alloc_kv(std::uint32_t num_blocks) {
  layer_kv_elems_ = std::size_t(num_blocks) * opt_.block_size * std::size_t(kv_dim_);
  kv_ = DeviceBuffer(layer_kv_elems_ * 2 * cfg_.num_hidden_layers * sizeof(bf16));
  TROUPE_CUDA_CHECK(cudaMemsetAsync(kv_.get(), 0, kv_.bytes(), stream_));  // never NaN bit patterns
}

const bf16* LlamaCudaModel::run_layers(const kernels::AttnBatch& b, const std::int32_t*) {
  const int T = b.num_tokens, d = int(cfg_.hidden_size);
  const float eps = float(cfg_.rms_norm_eps), scale = 1.0f / std::sqrt(float(hd_));
  const float* cs = cos_sin_.get<float>();
  const bf16* addend = nullptr;
  for (std::uint32_t l = 0; l < cfg_.num_hidden_layers; ++l) {
    const Layer& L = layers_[l];
    bf16* kc = kv_.get<bf16>() + 2 * l * layer_kv_elems_;
    bf16* vc = kc + layer_kv_elems_;
    kernels::add_rmsnorm(residual_, addend, L.attn_norm, eps, T, d, h_, stream_);
    linear(h_, T, L.qkv, qkv_);
    if (L.qkv_bias) add_bias_bf16(qkv_, T, qkv_dim_, qkv_dim_, L.qkv_bias, stream_);
    kernels::rope(qkv_, T, heads_, qkv_dim_, hd_, 0, hd_, b.positions, cs, false, stream_);
    kernels::rope(qkv_ + q_dim_, T, kv_heads_, qkv_dim_, hd_, 0, hd_, b.positions, cs, false, stream_);
    kernels::cache_write_kv(qkv_ + q_dim_, qkv_dim_, qkv_ + q_dim_ + kv_dim_, qkv_dim_, kv_heads_, hd_, b, kc, vc,
                            stream_);
    kernels::paged_attention(qkv_, qkv_dim_, heads_, kv_heads_, hd_, kc, vc, b, scale, attn_, stream_);
    addend = linear_residual(attn_, T, L.o, addend_);
    kernels::add_rmsnorm(residual_, addend, L.mlp_norm, eps, T, d, h_, stream_);
    linear(h_, T, L.gate_up, gate_up_);
    kernels::silu_mul(gate_up_, T, ff_, act_, stream_);
    addend = linear_residual(act_, T, L.down, addend_);
  }
  return addend;
}

}  // namespace troupe::cuda
