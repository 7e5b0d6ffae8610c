#pragma once
// Hugging Face safetensors checkpoints, memory-mapped: one file or shards through
// model.safetensors.index.json. Tensors are views into the mapping (no copy); dtype conversion and
// tensor-parallel slicing happen when a backend takes a tensor.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace troupe {

struct CheckpointError : std::runtime_error {  // what() names the file and, where it applies, the tensor
  using std::runtime_error::runtime_error;
};

enum class DType { f32, f16, bf16, f8_e4m3, i32, i64, u8 };
std::size_t dtype_size(DType t);
const char* dtype_name(DType t);  // safetensors spelling: "F32", "BF16", "F8_E4M3", ...

struct TensorView {
  std::string name;
  DType dtype = DType::f32;
  std::vector<std::int64_t> shape;
  const std::byte* data = nullptr;  // into the mapping, valid while the Checkpoint lives
  std::size_t nbytes = 0;
  std::int64_t numel() const;
};

class Checkpoint {
 public:
  // A directory (model.safetensors or the index + shards) or a single .safetensors file.
  static Checkpoint open(const std::string& path);
  bool has(const std::string& name) const;
  // Throws CheckpointError naming the tensor when it is missing, or when `expect_shape` is given and differs.
  const TensorView& tensor(const std::string& name, const std::vector<std::int64_t>& expect_shape = {}) const;
  std::vector<std::string> names() const;
  std::size_t total_bytes() const;

  Checkpoint(Checkpoint&&) noexcept;
  Checkpoint& operator=(Checkpoint&&) noexcept;
  ~Checkpoint();

 private:
  Checkpoint();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Element conversions, exact as PyTorch does them (bf16/f16/f8_e4m3fn -> f32).
float bf16_to_f32(std::uint16_t v);
float f16_to_f32(std::uint16_t v);
float f8e4m3_to_f32(std::uint8_t v);
// A whole tensor to f32 (for the cpu backend); FP8 weights are multiplied by their per-128x128-block
// `scale_inv` tensor when given (DeepSeek's weight_scale_inv: shape [ceil(rows/128), ceil(cols/128)]).
std::vector<float> to_f32(const TensorView& t, const TensorView* fp8_scale_inv = nullptr);
// The same with another square block size (quantization_config.weight_block_size).
std::vector<float> to_f32_blocked(const TensorView& t, const TensorView* scale_inv, std::int64_t block);
// Converts n elements of dtype t at src to f32 (the building block of the above and of shard.hpp).
void convert_run(DType t, const std::byte* src, std::size_t n, float* dst);
// Throws CheckpointError unless `scale` is the F32 [ceil(rows/block), ceil(cols/block)] scale of 2-D `t`.
void check_fp8_scale(const TensorView& t, const TensorView& scale, std::int64_t block);

}  // namespace troupe
