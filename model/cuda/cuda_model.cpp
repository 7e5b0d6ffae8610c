#include "model/cuda/cuda_model.hpp"

#include "kernels/core/ops.hpp"
#include "model/cuda/deepseek_cuda.hpp"
#include "model/cuda/llama_cuda.hpp"

#include <spdlog/spdlog.h>

#include <cmath>
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
  TROUPE_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  gemm_ = std::make_unique<kernels::Gemm>();
  max_tokens_ = int(opt_.max_num_batched_tokens);
  max_seqs_ = int(std::min(opt_.max_num_seqs, opt_.max_num_batched_tokens));
  if (opt_.block_size == 0 || opt_.max_model_len == 0 || max_tokens_ <= 0)
    throw std::invalid_argument("cuda model: block-size, max-model-len and max-num-batched-tokens must be >= 1");
}

CudaModel::~CudaModel() {
  if (stream_) {
    cudaStreamSynchronize(stream_);
    cudaStreamDestroy(stream_);
  }
}

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
}

void CudaModel::linear(const bf16* x, int m, const Linear& w, bf16* out) {
  if (m == 0) return;
  if (!w.is_fp8()) {
    gemm_->bf16(x, w.w, out, kernels::OutType::bf16, m, w.n, w.k, stream_);
    return;
  }
  kernels::quant_fp8_group128(x, m, w.k, q8_, q8_scale_, stream_);
  gemm_->fp8_block(q8_, q8_scale_, w.w8, w.scale, out, m, w.n, w.k, stream_);
}

const bf16* CudaModel::linear_residual(const bf16* x, int m, const Linear& w, bf16* addend) {
  if (!w.is_fp8()) {
    gemm_->bf16(x, w.w, residual_, kernels::OutType::f32, m, w.n, w.k, stream_, /*accumulate=*/true);
    return nullptr;
  }
  linear(x, m, w, addend);
  return addend;
}

DeviceLogits CudaModel::forward(std::span<const StepChunk> chunks) {
  const StepLayout L = pack_step(chunks, limits_, packed_);
  if (L.num_tokens == 0) return {logits_, 0};
  // The previous step's upload from step_host_ must be done before it is overwritten.
  TROUPE_CUDA_CHECK(cudaStreamSynchronize(stream_));
  std::memcpy(step_host_.get(), packed_.data(), std::size_t(L.total) * 4);
  auto* dev = step_dev_.get<std::int32_t>();
  TROUPE_CUDA_CHECK(cudaMemcpyAsync(dev, step_host_.get(), std::size_t(L.total) * 4, cudaMemcpyHostToDevice, stream_));
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
  b.max_seq_len = L.max_seq_len;
  const int H = int(cfg_.hidden_size), T = L.num_tokens;
  kernels::embedding(embed_, dev + L.tokens, T, H, residual_, stream_);
  const bf16* addend = run_layers(b, dev + L.tokens);
  kernels::add_rmsnorm(residual_, addend, final_norm_, float(cfg_.rms_norm_eps), T, H, normed_, stream_);
  if (L.num_logits == 0) return {logits_, 0};
  gather_rows_bf16(normed_, dev + L.logits_rows, L.num_logits, H, lm_in_, stream_);
  gemm_->bf16(lm_in_, lm_head_.w, logits_, kernels::OutType::f32, L.num_logits, int(cfg_.vocab_size), H, stream_);
  return {logits_, L.num_logits};
}

std::unique_ptr<CudaModel> load_cuda_model(const CudaModelOptions& opt) {
  ModelConfig cfg = load_model_config(opt.model_dir);
  if (cfg.arch == Arch::llama || cfg.arch == Arch::qwen2) return std::make_unique<LlamaCudaModel>(opt, cfg);
  if (cfg.is_deepseek()) return std::make_unique<DeepseekCudaModel>(opt, cfg);
  throw std::runtime_error("the cuda backend has no " + cfg.architecture + " implementation");
}

}  // namespace troupe::cuda
