#pragma once
// Where a cpu model's float32 weights come from: a safetensors checkpoint (shape-checked, bf16/f16/FP8
// converted) or, for load-format dummy, a seed. Logs progress (a line each second) and the load rate
// (GB/s) through spdlog.
#include "model/checkpoint/checkpoint.hpp"
#include "model/cpu/load_progress.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace troupe::cpu {

enum class Init { normal, ones, zeros };  // dummy values: N(0, 0.02) matrices, unit norms, zero biases

class WeightSource {
 public:
  static WeightSource checkpoint(const std::string& dir);
  static WeightSource dummy(std::uint64_t seed);
  static WeightSource view(const Checkpoint& ckpt);  // an open checkpoint the caller keeps alive

  bool has(const std::string& name) const;  // dummy: every tensor exists
  // Throws CheckpointError naming the tensor when it is missing, its shape differs, or it is FP8 without
  // its weight_scale_inv. Dummy weights ignore the checkpoint's dtype: FP8 configs get f32 values.
  std::vector<float> get(const std::string& name, const std::vector<std::int64_t>& shape, Init init = Init::normal);
  // Rank `rank` of `world`'s slice along `dim` (0: rows, 1: columns) in whole `granule`-wide units, read
  // from the mapping without converting the rest (FP8 scales by full-tensor coordinates). Dummy weights
  // are generated whole and sliced, so every tensor-parallel size sees the same model.
  std::vector<float> get_shard(const std::string& name, const std::vector<std::int64_t>& shape, int dim,
                               std::uint32_t rank, std::uint32_t world, std::int64_t granule = 1,
                               Init init = Init::normal);
  void done();  // logs the total and the rate

 private:
  const Checkpoint* source() const;
  const TensorView* scale_of(const Checkpoint& ck, const std::string& name, const TensorView& t) const;
  void count(std::size_t bytes) {
    if (progress_) progress_->add(bytes);
  }
  std::optional<Checkpoint> owned_;
  const Checkpoint* ckpt_ = nullptr;  // owned_ or a view; null for dummy
  std::uint64_t seed_ = 0;
  std::unique_ptr<LoadProgress> progress_;  // checkpoint loads: a progress line each second, then GB/s
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

// Deterministic N(0, stddev) values for a named tensor: the same seed and name give the same weights.
std::vector<float> dummy_values(std::uint64_t seed, const std::string& name, std::size_t n, float stddev);

}  // namespace troupe::cpu
