#include "model/cuda/cuda_model.hpp"

#include "kernels/core/ops.hpp"
#include "kernels/moe/moe.hpp"
#include "model/cuda/decode_graphs.hpp"
#include "model/cuda/deepseek_cuda.hpp"
#include "model/cuda/llama_cuda.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>

namespace troupe::cuda {

CudaModel::CudaModel(const CudaModelOptions& opt, ModelConfig cfg) : opt_(opt), cfg_(std::move(cfg)) {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0)
    throw std::runtime_error("cuda backend: no CUDA device is visible");
  if (opt_.device >= count)
    throw std::runtime_error("cuda backend: device " + std::to_string(opt_.device) + " does not exist (" +
                             std::to_string(count) + " visible)");
  TROUPE_CUDA_CHECK(cudaSetDevice(opt_.device));
  cudaDeviceProp prop{};
  TROUPE_CUDA_CHECK(cudaGetDeviceProperties(&prop, opt_.device));
  device_name_ = prop.name;
  sms_ = prop.multiProcessorCount;
  gemv_tokens_ = gemv_tokens();
  TROUPE_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  gemm_ = std::make_unique<kernels::Gemm>();
  max_tokens_ = int(opt_.max_num_batched_tokens);
  max_seqs_ = int(std::min(opt_.max_num_seqs, opt_.max_num_batched_tokens));
  if (opt_.block_size == 0 || opt_.max_model_len == 0 || max_tokens_ <= 0)
    throw std::invalid_argument("cuda model: block-size, max-model-len and max-num-batched-tokens must be >= 1");
}

CudaModel::~CudaModel() {
  if (stream_) cudaStreamSynchronize(stream_);
  graphs_.reset();
  if (stream_) cudaStreamDestroy(stream_);
}

int CudaModel::num_decode_graphs() const { return graphs_ ? graphs_->num_graphs() : 0; }

void CudaModel::upload_cos_sin(const std::vector<float>& inv_freq, float attention_factor) {
  const std::size_t half = inv_freq.size(), rot = 2 * half, P = opt_.max_model_len;
  std::vector<float> t(P * rot);
  for (std::size_t p = 0; p < P; ++p)
    for (std::size_t i = 0; i < half; ++i) {
      const float angle = float(p) * inv_freq[i];  // float32, as the cpu oracle computes it
      t[p * rot + i] = std::cos(angle) * attention_factor;
      t[p * rot + half + i] = std::sin(angle) * attention_factor;
    }
  cos_sin_ = DeviceBuffer(t.size() * 4);
  TROUPE_CUDA_CHECK(cudaMemcpy(cos_sin_.get(), t.data(), t.size() * 4, cudaMemcpyHostToDevice));
}

void CudaModel::finish_init(std::size_t kv_bytes_per_block) {
  const std::size_t H = cfg_.hidden_size, V = cfg_.vocab_size, T = std::size_t(max_tokens_), S = std::size_t(max_seqs_);
  auto layout = [&](auto& a) {
    a.template take<float>(T * H);
    a.template take<bf16>(T * H);
    a.template take<bf16>(S * H);
    a.template take<float>(S * V);
    if (max_k_ > 0) {
      a.template take<fp8>(T * std::size_t(max_k_));
      a.template take<float>(T * std::size_t(max_k_ / 128));
    }
  };
  ArenaPlan plan;
  layout(plan);
  plan_activations(plan);
  arena_ = Arena(plan.bytes());
  residual_ = arena_.take<float>(T * H);
  normed_ = arena_.take<bf16>(T * H);
  lm_in_ = arena_.take<bf16>(S * H);
  logits_ = arena_.take<float>(S * V);
  if (max_k_ > 0) {
    q8_ = arena_.take<fp8>(T * std::size_t(max_k_));
    q8_scale_ = arena_.take<float>(T * std::size_t(max_k_ / 128));
  }
  take_activations(arena_);
  // The FP8 staging buffers at their largest now: a decode graph bakes their addresses in, and a later
  // step that grew them (cudaFree + cudaMalloc) would leave the graph pointing at freed memory.
  if (max_k_ > 0) gemm_->reserve_fp8(max_tokens_, max_fp8_n_, max_k_);

  limits_.vocab = cfg_.vocab_size;
  limits_.block_size = opt_.block_size;
  limits_.max_tokens = opt_.max_num_batched_tokens;
  limits_.max_seqs = std::uint32_t(max_seqs_);
  limits_.max_blocks_per_seq = (opt_.max_model_len + opt_.block_size - 1) / opt_.block_size;
  const std::size_t step_ints = 4 * T + S * (2 + limits_.max_blocks_per_seq);
  step_dev_ = DeviceBuffer(step_ints * 4);
  step_host_ = PinnedBuffer(step_ints * 4);
  TROUPE_CUDA_CHECK(cudaStreamSynchronize(stream_));

  std::size_t free_b = 0, total_b = 0;
  TROUPE_CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
  const double reserve = double(total_b) * (1.0 - opt_.gpu_memory_utilization);
  const double avail = double(free_b) - reserve;
  std::uint64_t blocks = avail > 0 ? std::uint64_t(avail / double(kv_bytes_per_block)) : 0;
  blocks = std::min<std::uint64_t>(blocks, (std::uint64_t(1) << 31) / opt_.block_size - 1);  // int32 slots
  if (opt_.num_blocks_cap) blocks = std::min<std::uint64_t>(blocks, opt_.num_blocks_cap);
  if (opt_.num_blocks_override) blocks = opt_.num_blocks_override;
  if (blocks == 0)
    throw std::runtime_error("cuda model: no memory left for the KV cache (" + std::to_string(free_b >> 20) +
                             " MiB free of " + std::to_string(total_b >> 20) + " MiB after weights and " +
                             std::to_string(arena_.used() >> 20) +
                             " MiB of activations; raise gpu-memory-utilization)");
  num_blocks_ = std::uint32_t(blocks);
  limits_.num_blocks = num_blocks_;
  alloc_kv(num_blocks_);
  TROUPE_CUDA_CHECK(cudaStreamSynchronize(stream_));
  spdlog::info("cuda model on {}: {:.2f} GiB total, activations {:.1f} MiB for {} tokens, KV cache {} blocks x {} "
               "tokens ({:.2f} GiB, {} KiB/block)",
               device_name_, double(total_b) / (1 << 30), double(arena_.used()) / (1 << 20), max_tokens_, num_blocks_,
               opt_.block_size, double(num_blocks_) * double(kv_bytes_per_block) / (1 << 30), kv_bytes_per_block >> 10);
  if (!opt_.enforce_eager) capture_graphs();
}

kernels::AttnBatch CudaModel::attn_batch(const StepLayout& L, int max_seq_len) const {
  auto* dev = step_dev_.get<std::int32_t>();
  kernels::AttnBatch b;
  b.num_tokens = L.num_tokens;
  b.num_seqs = L.num_seqs;
  b.token_seq = dev + L.token_seq;
  b.positions = dev + L.positions;
  b.slot_mapping = dev + L.slot_mapping;
  b.block_tables = dev + L.block_tables;
  b.seq_lens = dev + L.seq_lens;
  b.max_blocks_per_seq = L.max_blocks;
  b.block_size = int(opt_.block_size);
  b.max_seq_len = max_seq_len;
  return b;
}

void CudaModel::run_body(const kernels::AttnBatch& b, const std::int32_t* tokens) {
  const int H = int(cfg_.hidden_size), T = b.num_tokens;
  kernels::embedding(embed_, tokens, T, H, residual_, stream_);
  const bf16* addend = run_layers(b, tokens);
  kernels::add_rmsnorm(residual_, addend, final_norm_, float(cfg_.rms_norm_eps), T, H, normed_, stream_);
}

void CudaModel::upload_step(const std::vector<std::int32_t>& packed, int count) {
  // The previous step's upload from step_host_ must be done before it is overwritten.
  TROUPE_CUDA_CHECK(cudaStreamSynchronize(stream_));
  std::memcpy(step_host_.get(), packed.data(), std::size_t(count) * 4);
  TROUPE_CUDA_CHECK(cudaMemcpyAsync(step_dev_.get(), step_host_.get(), std::size_t(count) * 4,
                                    cudaMemcpyHostToDevice, stream_));
}

void CudaModel::capture_graphs() {
  const auto t0 = std::chrono::steady_clock::now();
  const int max_blocks = int(limits_.max_blocks_per_seq);
  auto graphs = std::make_unique<DecodeGraphs>(decode_graph_batch_sizes(max_seqs_),
                                               decode_graph_context_buckets(int(opt_.max_model_len)));
  auto prepare = [&](int batch) {
    const StepLayout P = pad_decode_step({}, StepLayout{}, batch, max_blocks, padded_);
    upload_step(padded_, P.total);
  };
  auto record = [&](int batch, int context) {
    const StepLayout P = decode_graph_layout(batch, max_blocks);
    run_body(attn_batch(P, context), step_dev_.get<std::int32_t>() + P.tokens);
  };
  auto key = [&](int batch, int context) { return graph_plan_key(batch, context); };
  prepare_step({});  // graphs hold decode steps only
  try {
    graphs->capture(stream_, prepare, record, key);
  } catch (const std::exception& e) {
    cudaStreamSynchronize(stream_);
    cudaGetLastError();
    spdlog::warn("cuda model: capturing the decode graphs failed ({}); every step runs eagerly", e.what());
    return;
  }
  graphs_ = std::move(graphs);
  spdlog::info("captured {} decode graphs in {:.2f} s (batch sizes up to {}, contexts up to {})",
               graphs_->num_graphs(), std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(),
               std::min(max_seqs_, 256), opt_.max_model_len);
}

// Decode-sized projections (m <= gemv_tokens_) as GEMVs over the bf16 activations (kernels/gemm/gemv.hpp);
// TROUPE_GEMV_TOKENS=0 sends them to the GEMM paths (A/B, and to rule the GEMVs out when hunting a bug).
int CudaModel::gemv_tokens() {
  const char* v = std::getenv("TROUPE_GEMV_TOKENS");
  return v && *v ? std::clamp(std::atoi(v), 0, kernels::gemv::kMaxM) : kDefaultGemvTokens;
}

kernels::gemv::Plan CudaModel::gemv_plan(int m, const Linear& w, const bf16* x) const {
  const void* wp = w.is_fp8() ? static_cast<const void*>(w.w8) : w.w;
  if (m > gemv_tokens_ || (reinterpret_cast<std::uintptr_t>(x) | reinterpret_cast<std::uintptr_t>(wp)) % 16) return {};
  return kernels::gemv::plan(m, w.n, w.k, w.is_fp8() ? 1 : 2, sms_);
}

void CudaModel::linear(const bf16* x, int m, const Linear& w, bf16* out) {
  if (m == 0) return;
  if (const auto p = gemv_plan(m, w, x); p.ok) {
    if (w.is_fp8())
      kernels::gemv::fp8(x, w.w8, w.scale, out, m, w.n, w.k, p, stream_);
    else
      kernels::gemv::bf16(x, w.w, out, false, false, m, w.n, w.k, p, stream_);
    return;
  }
  if (!w.is_fp8()) {
    gemm_->bf16(x, w.w, out, kernels::OutType::bf16, m, w.n, w.k, stream_);
    return;
  }
  kernels::quant_fp8_group128(x, m, w.k, q8_, q8_scale_, stream_);
  gemm_->fp8_block(q8_, q8_scale_, w.w8, w.scale, out, m, w.n, w.k, stream_);
}

const bf16* CudaModel::linear_residual(const bf16* x, int m, const Linear& w, bf16* addend) {
  if (!w.is_fp8()) {
    if (const auto p = gemv_plan(m, w, x); p.ok) {
      kernels::gemv::bf16(x, w.w, residual_, true, true, m, w.n, w.k, p, stream_);
      return nullptr;
    }
    gemm_->bf16(x, w.w, residual_, kernels::OutType::f32, m, w.n, w.k, stream_, /*accumulate=*/true);
    return nullptr;
  }
  // One FP8 token: straight into the residual through the MoE down GEMV's flat kernel (no activation quantization,
  // no bf16 addend; kernels/moe/moe.hpp), where the shape allows.
  if (m == 1 && kernels::gemv_fp8_flat_residual(x, w.w8, w.scale, int(w.n), int(w.k), residual_, stream_))
    return nullptr;
  linear(x, m, w, addend);
  return addend;
}

DeviceLogits CudaModel::forward(std::span<const StepChunk> chunks) { return forward(chunks, {}, {}); }

DeviceLogits CudaModel::forward(std::span<const StepChunk> chunks, std::span<const std::uint8_t> all_rows,
                                const LogitsSliceFn& on_slice) {
  const StepLayout L = pack_step(chunks, limits_, packed_);
  if (L.num_tokens == 0) return {logits_, 0};
  // Decode-only steps (one token per sequence) replay a graph when one fits, on inputs padded to its batch.
  DecodeGraphs::Hit hit;
  if (graphs_ && use_graphs_ && L.num_tokens == L.num_seqs) hit = graphs_->find(L.num_seqs, L.max_seq_len);
  const StepLayout U = hit.exec ? pad_decode_step(packed_, L, hit.batch, L.max_blocks, padded_) : L;
  upload_step(hit.exec ? padded_ : packed_, U.total);
  auto* dev = step_dev_.get<std::int32_t>();
  if (hit.exec) {
    TROUPE_CUDA_CHECK(cudaGraphLaunch(hit.exec, stream_));
    ++graph_steps_;
  } else {
    prepare_step(chunks);
    run_body(attn_batch(U, U.max_seq_len), dev + U.tokens);
  }
  const int H = int(cfg_.hidden_size);
  if (!all_rows.empty()) all_row_logits(chunks, all_rows, on_slice);
  if (L.num_logits == 0) return {logits_, 0};
  gather_rows_bf16(normed_, dev + U.logits_rows, L.num_logits, H, lm_in_, stream_);
  gemm_->bf16(lm_in_, lm_head_.w, logits_, kernels::OutType::f32, L.num_logits, int(cfg_.vocab_size), H, stream_);
  return {logits_, L.num_logits};
}

// A chunk's rows are contiguous in normed_ (tokens are packed in chunk order), so slices need no gather:
//   normed_  | chunk 0 | chunk 1 (all rows)          | chunk 2 |
//                      [t0, t0+S) [t0+S, t0+2S) [..n)   S = max_seqs_ rows of logits_ per slice
void CudaModel::all_row_logits(std::span<const StepChunk> chunks, std::span<const std::uint8_t> all_rows,
                               const LogitsSliceFn& on_slice) {
  const int H = int(cfg_.hidden_size), V = int(cfg_.vocab_size);
  int t0 = 0;
  for (std::size_t c = 0; c < chunks.size(); ++c) {
    const int n = int(chunks[c].tokens.size());
    if (c < all_rows.size() && all_rows[c])
      for (int first = 0; first < n; first += max_seqs_) {
        const int rows = std::min(max_seqs_, n - first);
        gemm_->bf16(normed_ + std::size_t(t0 + first) * std::size_t(H), lm_head_.w, logits_, kernels::OutType::f32,
                    rows, V, H, stream_);
        on_slice(t0 + first, rows, logits_);
      }
    t0 += n;
  }
}

std::unique_ptr<CudaModel> load_cuda_model(const CudaModelOptions& opt) {
  ModelConfig cfg = load_model_config(opt.model_dir);
  if (cfg.arch == Arch::llama || cfg.arch == Arch::qwen2) return std::make_unique<LlamaCudaModel>(opt, cfg);
  if (cfg.is_deepseek()) return std::make_unique<DeepseekCudaModel>(opt, cfg);
  throw std::runtime_error("the cuda backend has no " + cfg.architecture + " implementation");
}

}  // namespace troupe::cuda
