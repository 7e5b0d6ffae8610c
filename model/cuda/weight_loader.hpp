#pragma once
// Streams a model's weights onto the GPU: safetensors (memory-mapped) -> pinned staging buffers ->
// cudaMemcpyAsync, bf16 kept bf16 (f32/f16 converted on the host), FP8 kept FP8 with its weight_scale_inv;
// or, for load-format dummy, filled on the GPU from the seed (N(0, 0.02) matrices, unit norms, zero
// biases; FP8 configs get FP8 weights and scales). A progress line with GB/s goes to spdlog.
//
// Tensor parallelism: a Split names the dimension a tensor is cut along (0: rows of a column-parallel
// linear, 1: columns of a row-parallel one); rank r of w gets shard_range(size, r, w, granule).
#include "model/checkpoint/checkpoint.hpp"
#include "model/cuda/cuda_util.hpp"
#include "model/cuda/glue.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace troupe::cuda {

enum class Init { normal, ones, zeros };

struct Split {
  int dim = -1;               // -1: whole tensor on every rank
  std::int64_t granule = 1;   // whole heads (head_dim) or single rows/columns
};

// y = x W^T with W [n, k] row-major: bf16, or FP8 e4m3 with float32 128x128 block scales.
struct Linear {
  const bf16* w = nullptr;
  const fp8* w8 = nullptr;
  const float* scale = nullptr;  // [ceil(n/128), k/128]
  int n = 0, k = 0;
  bool is_fp8() const { return w8 != nullptr; }
};

class WeightLoader {
 public:
  // dummy: no files read; fp8_dummy makes linear() return FP8 weights (configs with quantization_config).
  WeightLoader(const std::string& dir, bool dummy, std::uint64_t seed, bool fp8_dummy, std::uint32_t rank,
               std::uint32_t world, std::vector<DeviceBuffer>& store, cudaStream_t s);

  bool has(const std::string& name) const;
  // A weight as bf16 in new device memory (`shape` is the full tensor's; the result is this rank's
  // shard). FP8 checkpoint tensors are dequantized on the GPU.
  bf16* bf16_tensor(const std::string& name, const std::vector<std::int64_t>& shape, Init init = Init::normal,
                    Split split = {});
  // The same into caller-owned memory (packed expert weights, fused q/k/v).
  void bf16_into(const std::string& name, const std::vector<std::int64_t>& shape, bf16* dst,
                 Init init = Init::normal, Split split = {});
  float* f32_tensor(const std::string& name, const std::vector<std::int64_t>& shape, Init init = Init::zeros);
  // A linear weight [n, k]: FP8 stays FP8 when k is a multiple of 128 (what the FP8 GEMM takes), else it
  // is dequantized to bf16.
  Linear linear(const std::string& name, std::int64_t n, std::int64_t k, Split split = {});
  // Is this checkpoint tensor FP8 (or, for dummy weights, would it be)?
  bool is_fp8(const std::string& name) const;
  // FP8 weight and its scale into caller-owned memory (scale: ceil(rows/128) x ceil(cols/128) floats).
  void fp8_into(const std::string& name, std::int64_t rows, std::int64_t cols, fp8* dst, float* scale_dst);

  void done();  // waits for the uploads, logs the total and the rate
  std::size_t bytes_uploaded() const { return uploaded_; }

 private:
  template <class T>
  T* alloc(std::size_t count);
  // Copies `bytes` host bytes into device `dst` through the double-buffered staging; `fill` writes
  // up to `chunk` bytes of the source at `offset` into the staging pointer.
  void stream_bytes(void* dst, std::size_t bytes, const void* src);
  void upload_converted(const TensorView& t, std::int64_t r0, std::int64_t rows, std::int64_t c0,
                        std::int64_t cols, bf16* dst);
  void progress(std::size_t bytes);
  std::uint64_t key(const std::string& name) const;

  std::optional<Checkpoint> ckpt_;
  std::uint64_t seed_;
  bool fp8_dummy_;
  std::uint32_t rank_, world_;
  std::vector<DeviceBuffer>& store_;
  cudaStream_t s_;
  PinnedBuffer staging_[2];
  cudaEvent_t staged_[2] = {nullptr, nullptr};
  int next_ = 0;
  std::size_t uploaded_ = 0, total_ = 0, next_report_ = 0;
  double next_report_s_ = 1.0;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();

 public:
  ~WeightLoader();
  WeightLoader(const WeightLoader&) = delete;
  WeightLoader& operator=(const WeightLoader&) = delete;
};

}  // namespace troupe::cuda
