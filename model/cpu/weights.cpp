#include "model/cpu/weights.hpp"

#include "model/checkpoint/shard.hpp"

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
  spdlog::info("loading weights from {}: {} tensors, {:.3f} GB", dir, w.owned_->names().size(),
               double(w.owned_->total_bytes()) / 1e9);
  w.progress_ = std::make_unique<LoadProgress>(w.owned_->total_bytes());
  return w;
}

WeightSource WeightSource::view(const Checkpoint& ckpt) {
  WeightSource w;
  w.ckpt_ = &ckpt;
  w.progress_ = std::make_unique<LoadProgress>(ckpt.total_bytes());
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

const TensorView* WeightSource::scale_of(const Checkpoint& ck, const std::string& name, const TensorView& t) const {
  if (t.dtype != DType::f8_e4m3) return nullptr;
  // Block-quantized (DeepSeek): raw e4m3 values are meaningless without their scales.
  if (!ck.has(name + "_scale_inv")) throw CheckpointError(name + ": FP8 weight without " + name + "_scale_inv");
  return &ck.tensor(name + "_scale_inv");
}

std::vector<float> WeightSource::get(const std::string& name, const std::vector<std::int64_t>& shape, Init init) {
  const Checkpoint* ck = source();
  if (!ck) {
    std::size_t n = 1;
    for (auto d : shape) n *= std::size_t(d);
    if (init == Init::normal) return dummy_values(seed_, name, n, 0.02f);
    return std::vector<float>(n, init == Init::ones ? 1.0f : 0.0f);
  }
  const auto& t = ck->tensor(name, shape);
  auto v = to_f32(t, scale_of(*ck, name, t));
  count(t.nbytes);
  return v;
}

std::vector<float> WeightSource::get_shard(const std::string& name, const std::vector<std::int64_t>& shape, int dim,
                                           std::uint32_t rank, std::uint32_t world, std::int64_t granule, Init init) {
  if (world == 1) return get(name, shape, init);
  const Checkpoint* ck = source();
  if (ck) {
    const auto& t = ck->tensor(name, shape);
    auto v = shard_f32(t, dim, rank, world, scale_of(*ck, name, t), granule);
    count(t.nbytes / world);
    return v;
  }
  std::vector<float> full = get(name, shape, init);
  ShardRange r;
  try {
    r = shard_range(shape.at(std::size_t(dim)), rank, world, granule);
  } catch (const CheckpointError& e) {
    throw CheckpointError("tensor '" + name + "': " + e.what());
  }
  std::int64_t outer = 1, inner = 1;
  for (int i = 0; i < dim; ++i) outer *= shape[std::size_t(i)];
  for (std::size_t i = std::size_t(dim) + 1; i < shape.size(); ++i) inner *= shape[i];
  std::vector<float> out;
  out.reserve(std::size_t(outer * r.size * inner));
  for (std::int64_t o = 0; o < outer; ++o) {
    auto from = full.begin() + std::ptrdiff_t((o * shape[std::size_t(dim)] + r.begin) * inner);
    out.insert(out.end(), from, from + std::ptrdiff_t(r.size * inner));
  }
  return out;
}

void WeightSource::done() {
  if (progress_)
    progress_->finish();
  else
    spdlog::info("dummy weights ready in {:.2f} s", seconds_since(start_));
}

}  // namespace troupe::cpu
