#include "model/cuda/deepseek_cuda.hpp"

#include "kernels/core/ops.hpp"
#include "kernels/mla/mla.hpp"
#include "kernels/mla/mla_absorb.hpp"
#include "kernels/mla/mla_plan.hpp"
#include "kernels/mla/mla_prep.hpp"
#include "kernels/moe/moe_lt.hpp"
#include "model/cpu/rope_yarn.hpp"
#include "model/cuda/shared_experts.hpp"
#include "model/cuda/stacked_linear.hpp"

#include <spdlog/spdlog.h>

#include <cstdlib>

namespace troupe::cuda {
namespace {
// transformers builds q_a_layernorm and kv_a_layernorm with the default eps, not config.rms_norm_eps.
constexpr float kLatentNormEps = 1e-6f;
constexpr int kBlock = 128;

// Batches of at most this many tokens run the shared experts inside moe_experts (packed as always-on experts);
// larger ones run them as a dense MLP. 16 = one decode M tile of moe_experts, so the shared weights are read once:
// at 64 tokens (4 tiles) V2-Lite's step was 21 us slower merged (0.838 against 0.817 ms, 2 layers, H200), at one
// token 11 us faster. TROUPE_SHARED_MERGE_TOKENS=0 keeps the separate shared MLP only (the layout before; A/B).
int shared_merge_tokens() {
  const char* v = std::getenv("TROUPE_SHARED_MERGE_TOKENS");
  return v && *v ? std::atoi(v) : 16;
}
// TROUPE_FUSE_QKV_A=0 keeps q_a_proj and kv_a_proj_with_mqa as two GEMMs (for A/B timings).
bool fuse_qkv_a() {
  const char* v = std::getenv("TROUPE_FUSE_QKV_A");
  return !(v && std::string(v) == "0");
}
}  // namespace

DeepseekCudaModel::DeepseekCudaModel(const CudaModelOptions& opt, const ModelConfig& cfg)
    : CudaModel(opt, cfg),
      heads_(int(cfg.num_attention_heads)),
      q_lora_(int(cfg.q_lora_rank.value_or(0))),
      kvr_(int(cfg.kv_lora_rank)),
      nope_(int(cfg.qk_nope_head_dim)),
      rope_(int(cfg.qk_rope_head_dim)),
      v_(int(cfg.v_head_dim)),
      qk_(nope_ + rope_),
      row_(kvr_ + rope_) {
  if (opt.world > 1)
    throw std::runtime_error("cuda backend: tensor-parallel DeepSeek (NCCL, expert split) is not built yet");
  if (cfg_.n_routed_experts && (cfg_.n_group == 0 || cfg_.n_routed_experts % cfg_.n_group))
    throw std::invalid_argument("cuda deepseek: n_routed_experts is not a multiple of n_group");
  const bool v3 = cfg_.topk_method == "noaux_tc";
  routing_.num_experts = int(cfg_.n_routed_experts);
  routing_.top_k = int(cfg_.num_experts_per_tok);
  const bool grouped = v3 || cfg_.topk_method == "group_limited_greedy";
  routing_.n_group = grouped ? int(cfg_.n_group) : 1;
  routing_.topk_group = grouped ? int(cfg_.topk_group) : 1;
  routing_.sigmoid = cfg_.scoring_func == "sigmoid";
  routing_.group_by_top2_sum = v3;
  // As the oracle (DeepSeek's own code): V2 normalizes only with top_k > 1, and then does not scale.
  routing_.norm_topk_prob = cfg_.norm_topk_prob && (v3 || cfg_.num_experts_per_tok > 1);
  routing_.routed_scaling_factor = float(cfg_.routed_scaling_factor);
  merge_tokens_ = shared_merge_tokens();
  max_inter_ = int(cfg_.intermediate_size);
  if (cfg_.n_routed_experts) max_inter_ = std::max(max_inter_, int(cfg_.moe_intermediate_size * cfg_.n_shared_experts));
  {
    WeightLoader w(opt.model_dir, opt.dummy_weights, opt.seed, cfg_.fp8_block.has_value(), opt.rank, opt.world,
                   weights_, stream_);
    load(w);
    w.done();
  }
  const cpu::Rope r = cpu::make_rope(cfg_);
  interleave_ = r.interleave;
  scale_ = float(cpu::softmax_scale(cfg_));
  upload_cos_sin(r.inv_freq, r.attention_factor);
  TROUPE_CUDA_CHECK(cudaDeviceGetAttribute(&sm_count_, cudaDevAttrMultiProcessorCount, opt.device));
  mla_ws_bytes_ = kernels::mla_workspace_bytes(max_tokens_, heads_, kvr_, int(opt.max_model_len), int(opt.block_size));
  if (cfg_.n_routed_experts) {
    for (const Layer& L : layers_)
      if (L.moe)
        moe_ws_bytes_ = std::max(moe_ws_bytes_, kernels::moe_workspace_bytes(max_tokens_, routing_.top_k + routing_.always_on,
                                                                             L.experts));
  }
  finish_init(std::size_t(cfg_.num_hidden_layers) * opt.block_size * std::size_t(row_) * 2);
  init_prefill();
  spdlog::info("cuda {}: {} layers, hidden {}, {} heads, latent {} + rope {}, {} routed experts (top {}){}",
               cfg_.architecture, cfg_.num_hidden_layers, cfg_.hidden_size, heads_, kvr_, rope_,
               cfg_.n_routed_experts, cfg_.num_experts_per_tok, cfg_.fp8_block ? ", FP8 block-quantized" : "");
}

DeepseekCudaModel::~DeepseekCudaModel() = default;

// The absorbed MLA's split-KV plan is the only host-side choice that follows the context: every context
// whose plan does not split shares one graph (captured for the longest, so its single split covers all).
std::int64_t DeepseekCudaModel::graph_plan_key(int tokens, int context) const {
  namespace md = kernels::mla_detail;
  if (kvr_ != md::kFastLatent || rope_ != md::kFastRope) return 0;  // the generic kernel never splits
  const md::MlaPlan p = md::plan_fast(tokens, heads_, context, sm_count_);
  return p.splits == 1 ? 0 : (std::int64_t(p.splits) << 32) | p.split_len;
}

void DeepseekCudaModel::load(WeightLoader& w) {
  const std::int64_t H = cfg_.hidden_size, V = cfg_.vocab_size;
  embed_ = w.bf16_tensor("model.embed_tokens.weight", {V, H});
  final_norm_ = w.bf16_tensor("model.norm.weight", {H}, Init::ones);
  lm_head_.n = int(V);
  lm_head_.k = int(H);
  lm_head_.w = cfg_.tie_word_embeddings ? embed_ : w.bf16_tensor("lm_head.weight", {V, H});
  routing_.always_on = shared_as_experts(w);
  for (std::uint32_t l = 0; l < cfg_.num_hidden_layers; ++l) layers_.push_back(load_layer(w, l));
}

// How many pseudo-experts the shared MLP becomes (0: it stays a separate MLP only). FP8 experts need an FP8 shared
// MLP to pack.
int DeepseekCudaModel::shared_as_experts(WeightLoader& w) const {
  const int S = int(cfg_.n_shared_experts), E = int(cfg_.n_routed_experts);
  if (!E || !S || merge_tokens_ <= 0 || E + S > 1024 || S > 32) return 0;  // moe_route's limits
  const std::int64_t H = cfg_.hidden_size, I = cfg_.moe_intermediate_size;
  for (std::uint32_t l = 0; l < cfg_.num_hidden_layers; ++l) {
    if (!cfg_.is_moe_layer(l)) continue;
    const std::string p = "model.layers." + std::to_string(l) + ".mlp.";
    const bool e8 = w.is_fp8(p + "experts.0.gate_proj.weight") && H % kBlock == 0 && I % kBlock == 0;
    return e8 && !w.is_fp8(p + "shared_experts.gate_proj.weight") ? 0 : S;
  }
  return 0;
}

DeepseekCudaModel::Mlp DeepseekCudaModel::load_mlp(WeightLoader& w, const std::string& p, int inter) {
  const std::int64_t H = cfg_.hidden_size, I = inter;
  Mlp m;
  m.inter = inter;
  if (w.is_fp8(p + "gate_proj.weight") && H % kBlock == 0 && I % kBlock == 0) {
    // gate | up stacked: whole 128-row blocks, so their scale rows stack too
    weights_.emplace_back(std::size_t(2 * I * H));
    auto* w8 = weights_.back().get<fp8>();
    const std::size_t sc = std::size_t(I / kBlock) * std::size_t(H / kBlock);
    weights_.emplace_back(2 * sc * 4);
    auto* s = weights_.back().get<float>();
    w.fp8_into(p + "gate_proj.weight", I, H, w8, s);
    w.fp8_into(p + "up_proj.weight", I, H, w8 + I * H, s + sc);
    m.gate_up = {nullptr, w8, s, int(2 * I), int(H)};
  } else {
    weights_.emplace_back(std::size_t(2 * I * H) * 2);
    auto* gu = weights_.back().get<bf16>();
    w.bf16_into(p + "gate_proj.weight", {I, H}, gu);
    w.bf16_into(p + "up_proj.weight", {I, H}, gu + I * H);
    m.gate_up = {gu, nullptr, nullptr, int(2 * I), int(H)};
  }
  m.down = w.linear(p + "down_proj.weight", H, I);
  track_fp8(m.gate_up);
  track_fp8(m.down);
  return m;
}

// `extra` more experts are allocated after the routed ones (the shared experts, packed by the caller).
kernels::MoeWeights DeepseekCudaModel::load_experts(WeightLoader& w, const std::string& p, int extra) {
  const std::int64_t H = cfg_.hidden_size, I = cfg_.moe_intermediate_size, R = cfg_.n_routed_experts, E = R + extra;
  kernels::MoeWeights m;
  m.num_experts = int(E);
  m.hidden = int(H);
  m.inter = int(I);
  m.fp8 = w.is_fp8(p + "0.gate_proj.weight") && H % kBlock == 0 && I % kBlock == 0;
  const std::size_t n13 = std::size_t(2 * I * H), n2 = std::size_t(H * I);
  weights_.emplace_back(std::size_t(E) * n13 * (m.fp8 ? 1 : 2));
  void* w13 = weights_.back().get();
  weights_.emplace_back(std::size_t(E) * n2 * (m.fp8 ? 1 : 2));
  void* w2 = weights_.back().get();
  m.w13 = w13;
  m.w2 = w2;
  if (m.fp8) {
    const std::size_t s1 = std::size_t(I / kBlock) * std::size_t(H / kBlock);  // one of gate/up; w2 the same count
    weights_.emplace_back(std::size_t(E) * 3 * s1 * 4);
    float* s13 = weights_.back().get<float>();
    float* s2 = s13 + std::size_t(E) * 2 * s1;
    for (std::int64_t e = 0; e < R; ++e) {
      const std::string q = p + std::to_string(e) + ".";
      auto* base = static_cast<fp8*>(w13) + std::size_t(e) * n13;
      w.fp8_into(q + "gate_proj.weight", I, H, base, s13 + std::size_t(e) * 2 * s1);
      w.fp8_into(q + "up_proj.weight", I, H, base + I * H, s13 + std::size_t(e) * 2 * s1 + s1);
      w.fp8_into(q + "down_proj.weight", H, I, static_cast<fp8*>(w2) + std::size_t(e) * n2, s2 + std::size_t(e) * s1);
    }
    m.w13_scale = s13;
    m.w2_scale = s2;
    return m;
  }
  for (std::int64_t e = 0; e < R; ++e) {
    const std::string q = p + std::to_string(e) + ".";
    auto* base = static_cast<bf16*>(w13) + std::size_t(e) * n13;
    w.bf16_into(q + "gate_proj.weight", {I, H}, base);
    w.bf16_into(q + "up_proj.weight", {I, H}, base + I * H);
    w.bf16_into(q + "down_proj.weight", {H, I}, static_cast<bf16*>(w2) + std::size_t(e) * n2);
  }
  return m;
}

DeepseekCudaModel::Layer DeepseekCudaModel::load_layer(WeightLoader& w, std::uint32_t l) {
  const std::int64_t H = cfg_.hidden_size, heads = heads_, qk = qk_;
  const std::string p = "model.layers." + std::to_string(l) + ".", a = p + "self_attn.";
  Layer L;
  L.input_norm = w.bf16_tensor(p + "input_layernorm.weight", {H}, Init::ones);
  L.post_norm = w.bf16_tensor(p + "post_attention_layernorm.weight", {H}, Init::ones);
  if (q_lora_ && fuse_qkv_a())
    L.qkv_a = stack_linears(w, weights_, {{a + "q_a_proj.weight", q_lora_}, {a + "kv_a_proj_with_mqa.weight", row_}}, int(H));
  if (q_lora_) {
    if (!L.qkv_a.n) L.q_a = w.linear(a + "q_a_proj.weight", q_lora_, H);
    L.q_a_norm = w.bf16_tensor(a + "q_a_layernorm.weight", {q_lora_}, Init::ones);
    L.q_b = w.linear(a + "q_b_proj.weight", heads * qk, q_lora_);
  } else {
    L.q = w.linear(a + "q_proj.weight", heads * qk, H);
  }
  if (!L.qkv_a.n) L.kv_a = w.linear(a + "kv_a_proj_with_mqa.weight", row_, H);
  L.kv_a_norm = w.bf16_tensor(a + "kv_a_layernorm.weight", {kvr_}, Init::ones);
  L.kv_b = w.bf16_tensor(a + "kv_b_proj.weight", {heads * (nope_ + v_), kvr_});
  L.o = w.linear(a + "o_proj.weight", H, heads * v_);
  for (const Linear* x : {&L.q_a, &L.q_b, &L.q, &L.kv_a, &L.o, &L.qkv_a}) track_fp8(*x);
  L.moe = cfg_.is_moe_layer(l);
  if (!L.moe) {
    L.dense = load_mlp(w, p + "mlp.", int(cfg_.intermediate_size));
    return L;
  }
  const std::int64_t E = cfg_.n_routed_experts;
  if (opt_.exact_router)
    L.router_f32 = w.f32_tensor(p + "mlp.gate.weight", {E, H}, Init::normal);
  else
    L.router = w.bf16_tensor(p + "mlp.gate.weight", {E, H});
  if (cfg_.topk_method == "noaux_tc") L.router_bias = w.f32_tensor(p + "mlp.gate.e_score_correction_bias", {E});
  const int S = routing_.always_on;
  L.experts = load_experts(w, p + "mlp.experts.", S);
  if (S) pack_shared_experts(w, p + "mlp.shared_experts.", L.experts, int(E), S, stream_);
  // Large batches run the shared experts as one dense MLP: with one pseudo-expert that is a view of the packed one
  // (same layout); with several (V2-Lite: 2) the stacked MLP is loaded as well (a copy: 34.6 MB per V2-Lite layer)
  // so those batches keep 3 launches instead of 3 per pseudo-expert.
  if (cfg_.n_shared_experts && S != 1)
    L.shared = load_mlp(w, p + "mlp.shared_experts.", int(cfg_.moe_intermediate_size * cfg_.n_shared_experts));
  return L;
}

template <class A>
void DeepseekCudaModel::layout(A& a) {
  const std::size_t T = std::size_t(max_tokens_), H = cfg_.hidden_size, hd = std::size_t(heads_);
  const std::size_t E = std::max<std::size_t>(cfg_.n_routed_experts, 1), K = std::max<std::size_t>(cfg_.num_experts_per_tok + routing_.always_on, 1);
  a.template take<bf16>(T * H);                                 // h
  a.template take<bf16>(T * std::size_t(std::max(q_lora_, 1) + row_)); // qa (q_a | kv_a when fused)
  a.template take<bf16>(T * std::size_t(std::max(q_lora_, 1))); // qa_n
  a.template take<bf16>(T * hd * std::size_t(qk_));             // q
  a.template take<bf16>(T * std::size_t(row_));                 // kv
  a.template take<bf16>(T * std::size_t(row_));                 // latent
  a.template take<bf16>(T * hd * std::size_t(row_));            // qfull
  a.template take<bf16>(T * hd * std::size_t(kvr_));            // olat
  a.template take<bf16>(T * hd * std::size_t(v_));              // attn
  a.template take<bf16>(T * 2 * std::size_t(max_inter_));       // gate_up
  a.template take<bf16>(T * std::size_t(max_inter_));           // act
  a.template take<bf16>(T * H);                                 // addend
  a.template take<float>(T * E);                                // router logits
  a.template take<float>(T * K);                                // topk weights
  a.template take<std::int32_t>(T * K);                         // topk ids
  a.template take<char>(std::max<std::size_t>(mla_ws_bytes_, 1));
  a.template take<char>(std::max<std::size_t>(moe_ws_bytes_, 1));
  a.template take<float>(T * hd);                               // mla prefill lse
}

void DeepseekCudaModel::plan_activations(ArenaPlan& plan) { layout(plan); }

void DeepseekCudaModel::take_activations(Arena& a) {
  const std::size_t T = std::size_t(max_tokens_), H = cfg_.hidden_size, hd = std::size_t(heads_);
  const std::size_t E = std::max<std::size_t>(cfg_.n_routed_experts, 1), K = std::max<std::size_t>(cfg_.num_experts_per_tok + routing_.always_on, 1);
  h_ = a.take<bf16>(T * H);
  qa_ = a.take<bf16>(T * std::size_t(std::max(q_lora_, 1) + row_));
  qa_n_ = a.take<bf16>(T * std::size_t(std::max(q_lora_, 1)));
  q_ = a.take<bf16>(T * hd * std::size_t(qk_));
  kv_ = a.take<bf16>(T * std::size_t(row_));
  latent_ = a.take<bf16>(T * std::size_t(row_));
  qfull_ = a.take<bf16>(T * hd * std::size_t(row_));
  olat_ = a.take<bf16>(T * hd * std::size_t(kvr_));
  attn_ = a.take<bf16>(T * hd * std::size_t(v_));
  gate_up_ = a.take<bf16>(T * 2 * std::size_t(max_inter_));
  act_ = a.take<bf16>(T * std::size_t(max_inter_));
  addend_ = a.take<bf16>(T * H);
  router_logits_ = a.take<float>(T * E);
  topk_w_ = a.take<float>(T * K);
  topk_ids_ = a.take<std::int32_t>(T * K);
  mla_ws_ = a.take<char>(std::max<std::size_t>(mla_ws_bytes_, 1));
  moe_ws_ = a.take<char>(std::max<std::size_t>(moe_ws_bytes_, 1));
  mla_lse_ = a.take<float>(T * hd);
}

void DeepseekCudaModel::alloc_kv(std::uint32_t num_blocks) {
  layer_cache_elems_ = std::size_t(num_blocks) * opt_.block_size * std::size_t(row_);
  cache_ = DeviceBuffer(layer_cache_elems_ * cfg_.num_hidden_layers * sizeof(bf16));
  TROUPE_CUDA_CHECK(cudaMemsetAsync(cache_.get(), 0, cache_.bytes(), stream_));  // never NaN bit patterns
}

//   q_    [T, heads, nope | rope]          W_UK[h] = kv_b rows [h*(nope+v), +nope)   ([nope, latent])
//   qfull [T, heads, latent | rope]        W_UV[h] = kv_b rows [h*(nope+v)+nope, +v) ([v, latent])
//   olat  [T, heads, latent]  ->  attn [T, heads, v]
void DeepseekCudaModel::attention(const Layer& L, std::uint32_t l, const kernels::AttnBatch& b) {
  const int T = b.num_tokens;
  const float* cs = cos_sin_.get<float>();
  // Fused: qa_ rows [q_a (q_lora) | kv_a (latent + rope)], both read through strides.
  const bool fused = L.qkv_a.n != 0;
  const int qa_stride = fused ? L.qkv_a.n : q_lora_, kv_stride = fused ? L.qkv_a.n : row_;
  const bf16* kv = fused ? qa_ + q_lora_ : kv_;
  if (fused) linear(h_, T, L.qkv_a, qa_);
  if (q_lora_ && !fused) linear(h_, T, L.q_a, qa_);
  if (!q_lora_) linear(h_, T, L.q, q_);
  if (!fused) linear(h_, T, L.kv_a, kv_);
  bf16* cache = cache_.get<bf16>() + std::size_t(l) * layer_cache_elems_;
  kernels::MlaLatentPrep prep;  // kv_a_layernorm + rope(k_pe) -> latent_ rows and the cache; q_a_layernorm
  prep.kv = kv, prep.kv_stride = kv_stride, prep.kv_norm = L.kv_a_norm;
  if (q_lora_) {
    prep.q_a = qa_, prep.q_stride = qa_stride, prep.q_dim = q_lora_;
    prep.q_norm = L.q_a_norm, prep.q_out = qa_n_;
  }
  prep.eps = kLatentNormEps, prep.latent_dim = kvr_, prep.rope_dim = rope_;
  prep.cos_sin = cs, prep.interleaved = interleave_, prep.rows = latent_, prep.row_stride = row_;
  kernels::mla_latent_prep(prep, b, cache, stream_);
  // One decode token on R1 / V3 shapes: q_b and W_UK in one kernel (mla_absorb.hpp), q_ left unwritten.
  const bool absorb = !prefill_.active() && kernels::mla_absorb_fits(T, kvr_, rope_, nope_, v_);
  const bool qb_absorb = absorb && q_lora_ && L.q_b.is_fp8() &&
                         kernels::mla_qb_absorb_fits(T, q_lora_, qk_, nope_, rope_, kvr_);
  if (q_lora_ && !qb_absorb) linear(qa_n_, T, L.q_b, q_);
  if (prefill_.active()) {
    kernels::rope(q_, T, heads_, heads_ * qk_, qk_, nope_, rope_, b.positions, cs, interleave_, stream_);
    return prefill_attention(L, cache, b);
  }
  if (absorb) {  // decode sizes: W_UK, W_UV as fused GEMVs
    if (qb_absorb)
      kernels::mla_qb_absorb(qa_n_, L.q_b.w8, L.q_b.scale, heads_, v_, L.kv_b, b.positions, cs, interleave_, qfull_,
                             stream_);
    else
      kernels::mla_absorb_q(q_, T, heads_, nope_, rope_, v_, L.kv_b, kvr_, b.positions, cs, interleave_, qfull_,
                            stream_);
    kernels::MlaUvOut uv;
    uv.kv_b = L.kv_b, uv.nope = nope_, uv.v_dim = v_, uv.out = attn_;
    return kernels::mla_attention_absorbed(qfull_, heads_, kvr_, rope_, cache, b, scale_, mla_ws_, olat_, stream_,
                                           &uv);
  }
  const long long kvb_head = (long long)(nope_ + v_) * kvr_;
  gemm_->bf16_batched(q_, heads_ * qk_, qk_, L.kv_b, kvr_, kvb_head, qfull_, heads_ * row_, row_, heads_, T, kvr_,
                      nope_, /*w_transposed=*/true, stream_);
  kernels::mla_q_pe(q_, T, heads_, nope_, rope_, b.positions, cs, interleave_, qfull_, kvr_, stream_);
  kernels::mla_attention_absorbed(qfull_, heads_, kvr_, rope_, cache, b, scale_, mla_ws_, olat_, stream_);
  gemm_->bf16_batched(olat_, heads_ * kvr_, kvr_, L.kv_b + std::size_t(nope_) * kvr_, kvr_, kvb_head, attn_,
                      heads_ * v_, v_, heads_, T, v_, kvr_, /*w_transposed=*/false, stream_);
}

void DeepseekCudaModel::route(const Layer& L, int T, int always_on) {
  const int E = int(cfg_.n_routed_experts), H = int(cfg_.hidden_size);
  kernels::MoeRouting r = routing_;
  r.correction_bias = L.router_bias;
  r.always_on = always_on;
  if (L.router_f32)
    router_logits_f32(residual_, L.post_norm, float(cfg_.rms_norm_eps), T, H, L.router_f32, E, router_logits_, stream_);
  else if (const auto p = gemv_plan(T, Linear{L.router, nullptr, nullptr, E, H}, h_); p.ok)
    kernels::gemv::bf16(h_, L.router, router_logits_, /*out_f32=*/true, /*accumulate=*/false, T, E, H, p, stream_);
  else
    gemm_->bf16(h_, L.router, router_logits_, kernels::OutType::f32, T, E, H, stream_);
  kernels::moe_route(router_logits_, T, r, topk_ids_, topk_w_, stream_);
}

// One FP8 token: gate/up and the SiLU in the MoE gate/up GEMV (kernels/moe/moe.hpp), then the down projection
// through linear_residual's flat GEMV.
const bf16* DeepseekCudaModel::mlp(const Mlp& m, int T) {
  const bool fused = T == 1 && m.gate_up.is_fp8() &&
                     kernels::gemv_fp8_gate_up_silu(h_, m.gate_up.w8, m.gate_up.scale, m.inter, m.gate_up.k, act_,
                                                    stream_);
  if (!fused) {
    linear(h_, T, m.gate_up, gate_up_);
    kernels::silu_mul(gate_up_, T, m.inter, act_, stream_);
  }
  return linear_residual(act_, T, m.down, addend_);
}

// Shared experts packed after the routed ones (routing_.always_on of them): small batches route every token to
// them too, so one moe_experts call does routed + shared; large batches run them as one dense MLP (L.shared, or
// the view of the single packed pseudo-expert).
const bf16* DeepseekCudaModel::feed_forward(const Layer& L, int T) {
  if (!L.moe) return mlp(L.dense, T);
  const int S = routing_.always_on, E = int(cfg_.n_routed_experts);
  const int on = T <= merge_tokens_ ? S : 0;
  route(L, T, on);
  // prefill-sized batches: per-expert cuBLASLt GEMMs (one host sync); decode: the grouped kernels
  kernels::moe_experts_auto(*gemm_, h_, T, topk_ids_, topk_w_, routing_.top_k + on, L.experts, moe_ws_, residual_,
                            stream_, on);
  if (!cfg_.n_shared_experts || on) return nullptr;
  if (L.shared.inter) return mlp(L.shared, T);
  return mlp(Mlp{expert_gate_up(L.experts, E), expert_down(L.experts, E), L.experts.inter}, T);
}

const bf16* DeepseekCudaModel::run_layers(const kernels::AttnBatch& b, const std::int32_t*) {
  const int T = b.num_tokens, H = int(cfg_.hidden_size);
  const float eps = float(cfg_.rms_norm_eps);
  const bf16* addend = nullptr;
  for (std::uint32_t l = 0; l < cfg_.num_hidden_layers; ++l) {
    const Layer& L = layers_[l];
    kernels::add_rmsnorm(residual_, addend, L.input_norm, eps, T, H, h_, stream_);
    attention(L, l, b);
    addend = linear_residual(attn_, T, L.o, addend_);
    kernels::add_rmsnorm(residual_, addend, L.post_norm, eps, T, H, h_, stream_);
    addend = feed_forward(L, T);
  }
  return addend;
}

}  // namespace troupe::cuda
