#include "model/cuda/weight_loader.hpp"

#include "model/checkpoint/shard.hpp"

#include <spdlog/spdlog.h>

#include <cstring>

namespace troupe::cuda {
namespace {

constexpr std::size_t kStagingBytes = std::size_t(32) << 20;  // two of these: copy one while filling the other
constexpr std::int64_t kBlock = 128;

std::size_t numel(const std::vector<std::int64_t>& shape) {
  std::size_t n = 1;
  for (auto d : shape) n *= std::size_t(d);
  return n;
}

// float32 -> bf16, round to nearest even (as torch's .to(bfloat16)); NaN stays NaN.
std::uint16_t f32_to_bf16_bits(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return std::uint16_t((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return std::uint16_t(u >> 16);
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

WeightLoader::WeightLoader(const std::string& dir, bool dummy, std::uint64_t seed, bool fp8_dummy,
                           std::uint32_t rank, std::uint32_t world, std::vector<DeviceBuffer>& store,
                           cudaStream_t s)
    : seed_(seed), fp8_dummy_(fp8_dummy), rank_(rank), world_(world), store_(store), s_(s) {
  if (!dummy) {
    ckpt_.emplace(Checkpoint::open(dir));
    total_ = ckpt_->total_bytes();
    spdlog::info("loading weights from {} onto the GPU: {} tensors, {:.3f} GB", dir, ckpt_->names().size(),
                 double(total_) / 1e9);
    for (auto& b : staging_) b = PinnedBuffer(kStagingBytes);
    for (auto& e : staged_) TROUPE_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
  } else {
    spdlog::info("load-format dummy: weights filled on the GPU from seed {}{}", seed, fp8_dummy ? " (FP8)" : "");
  }
}

WeightLoader::~WeightLoader() {
  cudaStreamSynchronize(s_);
  for (auto& e : staged_)
    if (e) cudaEventDestroy(e);
}

template <class T>
T* WeightLoader::alloc(std::size_t count) {
  store_.emplace_back(count * sizeof(T));
  return store_.back().get<T>();
}

bool WeightLoader::has(const std::string& name) const { return !ckpt_ || ckpt_->has(name); }

bool WeightLoader::is_fp8(const std::string& name) const {
  if (!ckpt_) return fp8_dummy_;
  return ckpt_->has(name) && ckpt_->tensor(name).dtype == DType::f8_e4m3;
}

std::uint64_t WeightLoader::key(const std::string& name) const {
  std::uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a: stable across runs and builds
  for (unsigned char c : name) h = (h ^ c) * 0x100000001b3ull;
  return h ^ (std::uint64_t(rank_) << 56);
}

void WeightLoader::progress(std::size_t bytes) {
  uploaded_ += bytes;
  double s = seconds_since(start_);
  if (total_ > 0 && uploaded_ >= next_report_ && s >= next_report_s_) {
    next_report_s_ = s + 1.0;
    spdlog::info("loading weights: {:3.0f}% ({:.3f} GB, {:.2f} GB/s)", 100.0 * double(uploaded_) / double(total_),
                 double(uploaded_) / 1e9, double(uploaded_) / 1e9 / s);
    next_report_ = uploaded_ + total_ / 10;
  }
}

void WeightLoader::stream_bytes(void* dst, std::size_t bytes, const void* src) {
  auto* d = static_cast<char*>(dst);
  auto* p = static_cast<const char*>(src);
  for (std::size_t off = 0; off < bytes; off += kStagingBytes) {
    std::size_t n = std::min(kStagingBytes, bytes - off);
    int i = next_;
    next_ ^= 1;
    TROUPE_CUDA_CHECK(cudaEventSynchronize(staged_[i]));  // the copy that last used this buffer is done
    std::memcpy(staging_[i].get(), p + off, n);
    TROUPE_CUDA_CHECK(cudaMemcpyAsync(d + off, staging_[i].get(), n, cudaMemcpyHostToDevice, s_));
    TROUPE_CUDA_CHECK(cudaEventRecord(staged_[i], s_));
  }
}

// Rows [r0, r0+rows) x columns [c0, c0+cols) of a 2-D (or 1-D: one row) tensor, converted to bf16.
void WeightLoader::upload_converted(const TensorView& t, std::int64_t r0, std::int64_t rows, std::int64_t c0,
                                    std::int64_t cols, bf16* dst) {
  const std::int64_t full_cols = t.shape.size() > 1 ? t.numel() / t.shape[0] : t.numel();
  const std::size_t es = dtype_size(t.dtype);
  if (t.dtype == DType::bf16 && c0 == 0 && cols == full_cols) {  // as stored: straight from the mapping
    stream_bytes(dst, std::size_t(rows * cols) * 2, t.data + std::size_t(r0 * full_cols) * es);
    return;
  }
  std::vector<float> row(static_cast<std::size_t>(cols));
  std::vector<std::uint16_t> out(std::size_t(rows * cols));
  for (std::int64_t r = 0; r < rows; ++r) {
    convert_run(t.dtype, t.data + std::size_t((r0 + r) * full_cols + c0) * es, std::size_t(cols), row.data());
    for (std::int64_t c = 0; c < cols; ++c) out[std::size_t(r * cols + c)] = f32_to_bf16_bits(row[std::size_t(c)]);
  }
  stream_bytes(dst, out.size() * 2, out.data());
}

void WeightLoader::bf16_into(const std::string& name, const std::vector<std::int64_t>& shape, bf16* dst, Init init,
                             Split split) {
  std::vector<std::int64_t> part = shape;
  ShardRange r{0, split.dim >= 0 ? shape[std::size_t(split.dim)] : 0};
  if (split.dim >= 0 && world_ > 1) {
    r = shard_range(shape[std::size_t(split.dim)], rank_, world_, split.granule);
    part[std::size_t(split.dim)] = r.size;
  }
  const std::size_t n = numel(part);
  if (!ckpt_) {
    if (init == Init::normal)
      fill_normal_bf16(dst, n, seed_, key(name), 0.02f, s_);
    else
      fill_const_bf16(dst, n, init == Init::ones ? 1.0f : 0.0f, s_);
    return;
  }
  const TensorView& t = ckpt_->tensor(name, shape);
  const std::int64_t rows = shape.size() > 1 ? shape[0] : 1, cols = std::int64_t(numel(shape)) / rows;
  std::int64_t r0 = 0, nr = rows, c0 = 0, nc = cols;
  if (split.dim == 0 && world_ > 1) r0 = r.begin, nr = r.size;
  if (split.dim == 1 && world_ > 1) c0 = r.begin, nc = r.size;
  if (t.dtype == DType::f8_e4m3) {  // dequantized on the GPU with its block scales
    if (world_ > 1) throw CheckpointError(name + ": tensor-parallel slicing of FP8 weights is not supported");
    DeviceBuffer w8(std::size_t(rows * cols)), sc(std::size_t(((rows + kBlock - 1) / kBlock) * ((cols + kBlock - 1) / kBlock)) * 4);
    fp8_into(name, rows, cols, w8.get<fp8>(), sc.get<float>());
    dequant_fp8_block(w8.get<fp8>(), sc.get<float>(), int(rows), int(cols), int(kBlock), dst, s_);
    TROUPE_CUDA_CHECK(cudaStreamSynchronize(s_));  // w8 and sc are freed on return
    return;
  }
  upload_converted(t, r0, nr, c0, nc, dst);
  progress(t.nbytes * std::size_t(nr * nc) / std::size_t(rows * cols));
}

bf16* WeightLoader::bf16_tensor(const std::string& name, const std::vector<std::int64_t>& shape, Init init,
                                Split split) {
  std::size_t n = numel(shape);
  if (split.dim >= 0 && world_ > 1) n /= world_;
  bf16* p = alloc<bf16>(n);
  bf16_into(name, shape, p, init, split);
  return p;
}

float* WeightLoader::f32_tensor(const std::string& name, const std::vector<std::int64_t>& shape, Init init) {
  const std::size_t n = numel(shape);
  float* p = alloc<float>(n);
  if (!ckpt_ || !ckpt_->has(name)) {
    if (ckpt_ && init == Init::normal) throw CheckpointError("missing tensor " + name);
    if (init == Init::normal)
      fill_normal_f32(p, n, seed_, key(name), 0.02f, s_);
    else
      fill_const_f32(p, n, init == Init::ones ? 1.0f : 0.0f, s_);
    return p;
  }
  const TensorView& t = ckpt_->tensor(name, shape);
  std::vector<float> v(n);
  convert_run(t.dtype, t.data, n, v.data());
  stream_bytes(p, n * 4, v.data());
  progress(t.nbytes);
  return p;
}

void WeightLoader::fp8_into(const std::string& name, std::int64_t rows, std::int64_t cols, fp8* dst, float* scale_dst) {
  const std::size_t sn = std::size_t(((rows + kBlock - 1) / kBlock) * ((cols + kBlock - 1) / kBlock));
  if (!ckpt_) {
    fill_normal_fp8(dst, std::size_t(rows * cols), seed_, key(name), s_);
    fill_const_f32(scale_dst, sn, 0.02f, s_);
    return;
  }
  const TensorView& t = ckpt_->tensor(name, {rows, cols});
  if (t.dtype != DType::f8_e4m3) throw CheckpointError(name + ": expected F8_E4M3, found " + dtype_name(t.dtype));
  if (!ckpt_->has(name + "_scale_inv")) throw CheckpointError(name + ": FP8 weight without " + name + "_scale_inv");
  const TensorView& s = ckpt_->tensor(name + "_scale_inv");
  check_fp8_scale(t, s, kBlock);
  stream_bytes(dst, t.nbytes, t.data);
  stream_bytes(scale_dst, s.nbytes, s.data);
  progress(t.nbytes + s.nbytes);
}

Linear WeightLoader::linear(const std::string& name, std::int64_t n, std::int64_t k, Split split) {
  Linear l;
  l.n = int(split.dim == 0 && world_ > 1 ? n / world_ : n);
  l.k = int(split.dim == 1 && world_ > 1 ? k / world_ : k);
  if (is_fp8(name) && k % kBlock == 0 && world_ == 1) {
    fp8* w = alloc<fp8>(std::size_t(n * k));
    float* sc = alloc<float>(std::size_t(((n + kBlock - 1) / kBlock) * (k / kBlock)));
    fp8_into(name, n, k, w, sc);
    l.w8 = w;
    l.scale = sc;
    return l;
  }
  l.w = bf16_tensor(name, {n, k}, Init::normal, split);
  return l;
}

void WeightLoader::done() {
  TROUPE_CUDA_CHECK(cudaStreamSynchronize(s_));
  double s = seconds_since(start_);
  if (ckpt_)
    spdlog::info("uploaded {:.3f} GB of weights in {:.2f} s ({:.2f} GB/s)", double(uploaded_) / 1e9, s,
                 s > 0 ? double(uploaded_) / 1e9 / s : 0.0);
  else
    spdlog::info("dummy weights filled in {:.2f} s", s);
}

}  // namespace troupe::cuda
