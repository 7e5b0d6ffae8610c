#include "model/cpu/weights.hpp"

#include <spdlog/spdlog.h>

#include <cmath>
#include <functional>

namespace troupe::cpu {
namespace {
std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}
}  // namespace

std::vector<float> dummy_values(std::uint64_t seed, const std::string& name, std::size_t n, float stddev) {
  std::uint64_t key = splitmix64(seed ^ std::hash<std::string>{}(name));
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; i += 2) {  // Box-Muller: two normals per pair of uniforms
    double u1 = (double(splitmix64(key + i) >> 11) + 1.0) * 0x1.0p-53;
    double u2 = double(splitmix64(key + i + 1) >> 11) * 0x1.0p-53;
    double r = std::sqrt(-2.0 * std::log(u1)), a = 2.0 * M_PI * u2;
    v[i] = float(r * std::cos(a) * stddev);
    if (i + 1 < n) v[i + 1] = float(r * std::sin(a) * stddev);
  }
  return v;
}

WeightSource WeightSource::checkpoint(const std::string& dir) {
  WeightSource w;
  w.owned_.emplace(Checkpoint::open(dir));
  w.total_ = w.owned_->total_bytes();
  spdlog::info("loading weights from {}: {} tensors, {:.3f} GB", dir, w.owned_->names().size(), double(w.total_) / 1e9);
  return w;
}

WeightSource WeightSource::view(const Checkpoint& ckpt) {
  WeightSource w;
  w.ckpt_ = &ckpt;
  w.total_ = ckpt.total_bytes();
  return w;
}

// Derived on each use rather than stored, so a moved WeightSource never points into its old self.
const Checkpoint* WeightSource::source() const { return owned_ ? &*owned_ : ckpt_; }

WeightSource WeightSource::dummy(std::uint64_t seed) {
  WeightSource w;
  w.seed_ = seed;
  spdlog::info("load-format dummy: weights from seed {}", seed);
  return w;
}

bool WeightSource::has(const std::string& name) const { return !source() || source()->has(name); }

std::vector<float> WeightSource::get(const std::string& name, const std::vector<std::int64_t>& shape, Init init) {
  const Checkpoint* ck = source();
  if (!ck) {
    std::size_t n = 1;
    for (auto d : shape) n *= std::size_t(d);
    if (init == Init::normal) return dummy_values(seed_, name, n, 0.02f);
    return std::vector<float>(n, init == Init::ones ? 1.0f : 0.0f);
  }
  const auto& t = ck->tensor(name, shape);
  const TensorView* scale = nullptr;
  if (t.dtype == DType::f8_e4m3) {  // block-quantized (DeepSeek): raw e4m3 values are meaningless alone
    if (!ck->has(name + "_scale_inv")) throw CheckpointError(name + ": FP8 weight without " + name + "_scale_inv");
    scale = &ck->tensor(name + "_scale_inv");
  }
  auto v = to_f32(t, scale);
  loaded_ += t.nbytes;
  double s = seconds_since(start_);
  if (total_ > 0 && loaded_ >= next_report_ && s >= next_report_s_) {  // every 10%, at most once a second
    next_report_s_ = s + 1.0;
    spdlog::info("loading weights: {:3.0f}% ({:.3f} GB, {:.2f} GB/s)", 100.0 * double(loaded_) / double(total_),
                 double(loaded_) / 1e9, s > 0 ? double(loaded_) / 1e9 / s : 0.0);
    next_report_ = loaded_ + total_ / 10;
  }
  return v;
}

void WeightSource::done() {
  double s = seconds_since(start_);
  if (source())
    spdlog::info("loaded {:.3f} GB of weights in {:.2f} s ({:.2f} GB/s)", double(loaded_) / 1e9, s,
                 s > 0 ? double(loaded_) / 1e9 / s : 0.0);
  else
    spdlog::info("dummy weights ready in {:.2f} s", s);
}

}  // namespace troupe::cpu
