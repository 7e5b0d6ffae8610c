#pragma once
// Where a cpu model's float32 weights come from: a safetensors checkpoint (shape-checked, bf16/f16/FP8
// converted) or, for load-format dummy, a seed. Logs progress and the load rate (GB/s) through spdlog.
#include "model/checkpoint/checkpoint.hpp"

#include <chrono>
#include <cstdint>
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
  void done();  // logs the total and the rate

 private:
  const Checkpoint* source() const;
  std::optional<Checkpoint> owned_;
  const Checkpoint* ckpt_ = nullptr;  // owned_ or a view; null for dummy
  std::uint64_t seed_ = 0;
  std::size_t loaded_ = 0, total_ = 0, next_report_ = 0;
  double next_report_s_ = 1.0;  // the first progress line after a second: small models log only the total
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

// Deterministic N(0, stddev) values for a named tensor: the same seed and name give the same weights.
std::vector<float> dummy_values(std::uint64_t seed, const std::string& name, std::size_t n, float stddev);

}  // namespace troupe::cpu
