#pragma once
// Host-side helpers for the kernel tests and benchmarks: device buffers, bf16 / fp8 e4m3 conversions done
// bit by bit on the host (round to nearest even, as the device's conversions), random data.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace troupe::kernel_test {

inline void cuda_ok(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(e));
}

// A device array of n T's; bf16 and fp8 buffers are held as uint16_t / uint8_t and cast at the call.
template <class T>
class Dev {
 public:
  Dev() = default;
  explicit Dev(std::size_t n) : n_(n) {
    if (n) cuda_ok(cudaMalloc(&p_, n * sizeof(T)), "cudaMalloc");
  }
  explicit Dev(const std::vector<T>& h) : Dev(h.size()) { upload(h); }
  Dev(Dev&& o) noexcept : p_(o.p_), n_(o.n_) { o.p_ = nullptr, o.n_ = 0; }
  Dev& operator=(Dev&& o) noexcept {
    std::swap(p_, o.p_), std::swap(n_, o.n_);
    return *this;
  }
  Dev(const Dev&) = delete;
  ~Dev() {
    if (p_) cudaFree(p_);
  }
  void upload(const std::vector<T>& h) {
    if (h.size() != n_) throw std::logic_error("Dev::upload: size mismatch");
    if (n_) cuda_ok(cudaMemcpy(p_, h.data(), n_ * sizeof(T), cudaMemcpyHostToDevice), "upload");
  }
  std::vector<T> host() const {
    std::vector<T> h(n_);
    cuda_ok(cudaDeviceSynchronize(), "sync before download");
    if (n_) cuda_ok(cudaMemcpy(h.data(), p_, n_ * sizeof(T), cudaMemcpyDeviceToHost), "download");
    return h;
  }
  T* get() const { return p_; }
  template <class U>
  U* as() const {
    return reinterpret_cast<U*>(p_);
  }
  std::size_t size() const { return n_; }

 private:
  T* p_ = nullptr;
  std::size_t n_ = 0;
};

inline float bf16_to_float(std::uint16_t b) {
  const std::uint32_t u = std::uint32_t(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline std::uint16_t float_to_bf16(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fc0;  // NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return std::uint16_t(u >> 16);
}
inline float round_bf16(float f) { return bf16_to_float(float_to_bf16(f)); }

// OCP FP8 E4M3 (NVIDIA's __nv_fp8_e4m3): bias 7, no infinities, 0x7f / 0xff are NaN, max 448.
inline float fp8_to_float(std::uint8_t b) {
  const int sign = b >> 7, exp = (b >> 3) & 15, man = b & 7;
  if (exp == 15 && man == 7) return NAN;
  const float v = exp == 0 ? std::ldexp(float(man), -9) : std::ldexp(1.0f + float(man) / 8.0f, exp - 7);
  return sign ? -v : v;
}
// Round to nearest even with saturation to +-448 (the device's __NV_SATFINITE).
inline std::uint8_t float_to_fp8(float f) {
  std::uint8_t best = 0;
  float best_err = INFINITY;
  const float a = std::fabs(f) > 448.0f ? 448.0f : std::fabs(f);
  for (int c = 0; c < 127; ++c) {  // 0x00..0x7e: every finite non-negative value
    const float err = std::fabs(fp8_to_float(std::uint8_t(c)) - a);
    if (err < best_err || (err == best_err && (c & 1) == 0)) best_err = err, best = std::uint8_t(c);
  }
  return std::uint8_t(best | (f < 0 && best ? 0x80 : 0));
}

struct Rng {
  std::mt19937_64 g;
  explicit Rng(std::uint64_t seed) : g(seed) {}
  float uniform(float lo = -1, float hi = 1) { return std::uniform_real_distribution<float>(lo, hi)(g); }
  int integer(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(g); }
  std::vector<float> floats(std::size_t n, float lo = -1, float hi = 1) {
    std::vector<float> v(n);
    for (auto& x : v) x = uniform(lo, hi);
    return v;
  }
  // bf16 bits of uniform values, and their float values (what the device sees)
  std::vector<std::uint16_t> bf16s(std::size_t n, std::vector<float>* as_float, float lo = -1, float hi = 1) {
    std::vector<std::uint16_t> v(n);
    if (as_float) as_float->resize(n);
    for (std::size_t i = 0; i < n; ++i) {
      v[i] = float_to_bf16(uniform(lo, hi));
      if (as_float) (*as_float)[i] = bf16_to_float(v[i]);
    }
    return v;
  }
};

inline std::vector<float> to_floats(const std::vector<std::uint16_t>& b) {
  std::vector<float> f(b.size());
  for (std::size_t i = 0; i < b.size(); ++i) f[i] = bf16_to_float(b[i]);
  return f;
}

// Random e4m3 codes: |value| in [2^-4, 2^4), random sign (no NaN, no subnormals).
inline std::vector<std::uint8_t> fp8_codes(std::size_t n, Rng& rng) {
  std::vector<std::uint8_t> v(n);
  for (auto& b : v) b = std::uint8_t((rng.integer(0, 1) << 7) | (rng.integer(3, 10) << 3) | rng.integer(0, 7));
  return v;
}

// This GPU's SM count (the input of the kernels' launch plans).
inline int sm_count() {
  int dev = 0, sms = 0;
  cuda_ok(cudaGetDevice(&dev), "device");
  cuda_ok(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev), "SMs");
  return sms;
}

inline std::vector<float> decode_fp8(const std::vector<std::uint8_t>& q) {
  float lut[256];
  for (int b = 0; b < 256; ++b) lut[b] = fp8_to_float(std::uint8_t(b));
  std::vector<float> f(q.size());
  for (std::size_t i = 0; i < q.size(); ++i) f[i] = lut[q[i]];
  return f;
}

// FP8 weights [n, k] (fp8_codes) with 128x128 block scales in [1/128, 1/32): on the device, and decoded on the host.
struct Fp8BlockWeights {
  std::vector<std::uint8_t> host_codes;
  std::vector<float> values, scales;  // [n, k]; [ceil(n / 128), k / 128]
  Dev<std::uint8_t> codes;
  Dev<float> dev_scales;
  Fp8BlockWeights(int n, int k, Rng& rng)
      : host_codes(fp8_codes(std::size_t(n) * k, rng)),
        values(decode_fp8(host_codes)),
        scales(rng.floats(std::size_t((n + 127) / 128) * (k / 128), 0.5f / 64, 2.0f / 64)),
        codes(host_codes),
        dev_scales(scales) {}
};

// The output of a GEMM / GEMV test in one of the three modes the tests cycle through: 0 bf16, 1 float32 accumulate
// (the residual add), 2 bf16 accumulate; `initial` holds the starting values (bf16-representable), uploaded both ways.
struct OutModes {
  int mode;
  std::vector<float> initial;
  Dev<float> f32;
  Dev<std::uint16_t> b16;
  static std::vector<float> bf16_values(std::vector<float> v) {
    for (float& x : v) x = bf16_to_float(float_to_bf16(x));
    return v;
  }
  static std::vector<std::uint16_t> bits(const std::vector<float>& v) {
    std::vector<std::uint16_t> b(v.size());
    for (std::size_t i = 0; i < v.size(); ++i) b[i] = float_to_bf16(v[i]);
    return b;
  }
  OutModes(int m, std::size_t n, Rng& rng)
      : mode(m), initial(bf16_values(rng.floats(n))), f32(initial), b16(bits(initial)) {}
  bool out_f32() const { return mode == 1; }
  bool accumulate() const { return mode != 0; }
  void* ptr() const { return mode == 1 ? static_cast<void*>(f32.get()) : static_cast<void*>(b16.get()); }
  double start(std::size_t i) const { return mode ? initial[i] : 0.0; }
  std::vector<float> result() const { return mode == 1 ? f32.host() : to_floats(b16.host()); }
  const char* label() const { return mode == 0 ? "" : mode == 1 ? " (f32 accumulate)" : " (bf16 accumulate)"; }
};

// Row r of an FP8 block-scaled GEMM's reference, column j: sum over 128-wide k blocks b of
// (a[r, b] . w[j, b]) x a_scale[r, b] x w_scale[j / 128, b], in double (decoded operands, [rows, k] each).
inline double fp8_block_ref(const std::vector<float>& af, const std::vector<float>& as, const std::vector<float>& wf,
                            const std::vector<float>& ws, int k, int r, int j) {
  const int kb = k / 128;
  double acc = 0;
  for (int b = 0; b < kb; ++b) {
    double part = 0;
    for (int e = b * 128; e < b * 128 + 128; ++e)
      part += double(af[std::size_t(r) * k + e]) * wf[std::size_t(j) * k + e];
    acc += part * as[std::size_t(r) * kb + b] * ws[std::size_t(j / 128) * kb + b];
  }
  return acc;
}

}  // namespace troupe::kernel_test
