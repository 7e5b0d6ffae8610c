#pragma once
// The GPU model behind the cuda backend: Llama / Qwen2 (llama_cuda.hpp) and DeepSeek-V2/V3
// (deepseek_cuda.hpp) over a paged KV cache in device memory, computing a mixed batch of prefill chunks
// and decode tokens per step (the same contract as the cpu model, model/cpu/cpu_model.hpp), with the
// logits of the chunks that want them left in device memory for GPU sampling.
//
// Memory: weights first, then the activation arena (sized for a max-num-batched-tokens step) and the
// kernels' workspaces; what is left of total x gpu-memory-utilization becomes KV blocks.
#include "kernels/core/batch.hpp"
#include "kernels/gemm/gemm.hpp"
#include "kernels/gemm/gemv.hpp"
#include "model/config/model_config.hpp"
#include "model/cuda/cuda_util.hpp"
#include "model/cuda/step_batch.hpp"
#include "model/cuda/weight_loader.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace troupe::cuda {

struct CudaModelOptions {
  std::string model_dir;
  bool dummy_weights = false;            // load-format dummy
  std::uint64_t seed = 0;
  std::uint32_t block_size = 16;
  double gpu_memory_utilization = 0.9;
  std::uint32_t max_num_batched_tokens = 8192, max_num_seqs = 256, max_model_len = 4096;
  std::uint32_t num_blocks_override = 0;  // num-gpu-blocks-override (0: from memory)
  std::uint32_t num_blocks_cap = 0;       // never more than this (0: no cap)
  std::uint32_t rank = 0, world = 1;
  int device = 0;
  // DeepSeek MoE router in float32 from the float32 residual (the oracle's arithmetic) instead of the
  // bf16 GEMM vLLM and SGLang use: for checks, where near-tied routes of random weights otherwise flip.
  bool exact_router = false;
  // enforce-eager: no CUDA graphs. Otherwise decode-only steps of up to min(max-num-seqs, 256) sequences
  // replay graphs captured at start-up (decode_graphs.hpp); prefill and mixed steps always run eagerly.
  bool enforce_eager = false;
};

class DecodeGraphs;

struct DeviceLogits {
  float* data = nullptr;  // [rows, vocab] float32, valid until the next forward (the sampler edits it)
  int rows = 0;
};

class CudaModel {
 public:
  virtual ~CudaModel();
  const ModelConfig& config() const { return cfg_; }
  std::uint32_t num_blocks() const { return num_blocks_; }
  cudaStream_t stream() const { return stream_; }
  const std::string& device_name() const { return device_name_; }
  const CudaModelOptions& options() const { return opt_; }
  // Decode graphs: how many were captured, whether forward may replay them (for eager/graph comparisons
  // on one model), and how many steps replayed one so far.
  int num_decode_graphs() const;
  void set_use_graphs(bool on) { use_graphs_ = on; }
  std::int64_t graph_steps() const { return graph_steps_; }

  // Runs every chunk's tokens (their KV is written at their positions), then the final norm and lm_head
  // for the last token of each non-empty chunk with wants_logits, in chunk order. Asynchronous: the
  // logits are ready when the stream is. Throws std::invalid_argument for bad token ids or block tables.
  DeviceLogits forward(std::span<const StepChunk> chunks);
  // The same, and first every row of the chunks c with all_rows[c] != 0 (prompt_logprobs), in slices of at
  // most max-num-seqs rows through the logits buffer: on_slice(first, rows, logits) gets step rows (token
  // indices) [first, first + rows). It must only enqueue work on stream(): the next slice overwrites them.
  using LogitsSliceFn = std::function<void(int first, int rows, const float* logits)>;
  DeviceLogits forward(std::span<const StepChunk> chunks, std::span<const std::uint8_t> all_rows,
                       const LogitsSliceFn& on_slice);

 protected:
  CudaModel(const CudaModelOptions& opt, ModelConfig cfg);
  // Called by the derived constructor once its weights and workspaces exist: allocates the shared
  // activations, measures free memory and allocates `kv_bytes_per_block`-sized blocks through alloc_kv.
  void finish_init(std::size_t kv_bytes_per_block);
  // The derived model's activations (counted before the KV cache is sized).
  virtual void plan_activations(ArenaPlan& plan) = 0;
  virtual void take_activations(Arena& arena) = 0;
  virtual void alloc_kv(std::uint32_t num_blocks) = 0;
  // Every layer over residual_ (float32 [T, hidden]); returns a bf16 [T, hidden] addend still to be added
  // to the residual (an FP8 GEMM's output), or null.
  virtual const bf16* run_layers(const kernels::AttnBatch& b, const std::int32_t* tokens) = 0;
  // A signature of the attention kernels' host-side planning for `tokens` decode rows planned for a longest
  // sequence of `context`: decode graphs of one batch size with equal keys are one graph. Default: every
  // context its own graph.
  virtual std::int64_t graph_plan_key(int tokens, int context) const { return context; }
  // The host-side chunk list of an eagerly run step (after its upload, the stream idle since the previous
  // step), for per-step plans kept by the derived model; an empty list before capturing decode graphs.
  virtual void prepare_step(std::span<const StepChunk> chunks) { (void)chunks; }

  // x [m, k] times w^T into out [m, n] bf16: GEMVs for decode-sized m, else GEMMs (FP8 weights: the
  // activations are quantized per 1x128 first).
  void linear(const bf16* x, int m, const Linear& w, bf16* out);
  // residual += x w^T. bf16 weights accumulate into the float32 residual; FP8 weights write `addend`
  // and return it, to be added by the next add_rmsnorm.
  const bf16* linear_residual(const bf16* x, int m, const Linear& w, bf16* addend);
  // The GEMV launch plan for m tokens of x through w, or !ok: more tokens than gemv_tokens_, or a shape or
  // alignment the GEMV does not take.
  kernels::gemv::Plan gemv_plan(int m, const Linear& w, const bf16* x) const;
  // 2: at m = 2 the GEMV still wins on R1's attention projections (troupe_kernel_bench gemv / gemm_small_m:
  // q_a|kv_a 12.6 us against small-m's 16.3-17.7 at m = 1-4 plus a quantization launch, q_b 20.3 against
  // 22.3-23.4) and loses only on the 3 dense layers' gate_up (99.3 against 86.2-89.6).
  static constexpr int kDefaultGemvTokens = 2;
  static int gemv_tokens();
  // The [max_positions, rot_dim] cos|sin table of ops.hpp's rope, from the inverse frequencies.
  void upload_cos_sin(const std::vector<float>& inv_freq, float attention_factor);
  // forward's prompt_logprobs rows: lm_head over every row of the marked chunks, slice by slice.
  void all_row_logits(std::span<const StepChunk> chunks, std::span<const std::uint8_t> all_rows,
                      const LogitsSliceFn& on_slice);

  CudaModelOptions opt_;
  ModelConfig cfg_;
  cudaStream_t stream_ = nullptr;
  std::string device_name_;
  std::vector<DeviceBuffer> weights_;
  std::unique_ptr<kernels::Gemm> gemm_;
  const bf16* embed_ = nullptr;
  const bf16* final_norm_ = nullptr;
  Linear lm_head_;
  DeviceBuffer cos_sin_;
  std::uint32_t num_blocks_ = 0;
  int max_tokens_ = 0, max_seqs_ = 0, max_k_ = 0;  // max_k_: widest FP8 GEMM input
  int sms_ = 0;
  int gemv_tokens_ = 0;  // projections of at most this many tokens run as GEMVs
  int max_fp8_n_ = 0;                              // widest FP8 GEMM output (the staging reservation)
  float* residual_ = nullptr;                      // [max_tokens, hidden] float32

 private:
  kernels::AttnBatch attn_batch(const StepLayout& L, int max_seq_len) const;
  // embedding, every layer, the final norm into normed_: the part of a step a decode graph holds.
  void run_body(const kernels::AttnBatch& b, const std::int32_t* tokens);
  void upload_step(const std::vector<std::int32_t>& packed, int count);
  void capture_graphs();

  Arena arena_;
  fp8* q8_ = nullptr;
  float* q8_scale_ = nullptr;
  bf16* normed_ = nullptr;  // [max_tokens, hidden]
  bf16* lm_in_ = nullptr;   // [max_seqs, hidden]
  float* logits_ = nullptr; // [max_seqs, vocab]
  DeviceBuffer step_dev_;
  PinnedBuffer step_host_;
  std::vector<std::int32_t> packed_, padded_;
  std::unique_ptr<DecodeGraphs> graphs_;
  bool use_graphs_ = true;
  std::int64_t graph_steps_ = 0;
  StepLimits limits_;
};

// Reads config.json and builds the model for its architecture. Throws ModelConfigError, CheckpointError,
// std::runtime_error (no GPU, out of memory, an architecture without a CUDA implementation).
std::unique_ptr<CudaModel> load_cuda_model(const CudaModelOptions& opt);

}  // namespace troupe::cuda
