// Element conversions to f32, bit-exact with PyTorch's casts.
#include "model/checkpoint/checkpoint.hpp"

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>

namespace troupe {

float bf16_to_f32(std::uint16_t v) { return std::bit_cast<float>(std::uint32_t(v) << 16); }

float f16_to_f32(std::uint16_t v) {
  std::uint32_t sign = std::uint32_t(v & 0x8000) << 16;
  std::uint32_t exp = (v >> 10) & 0x1f, mant = v & 0x3ff;
  float mag;
  if (exp == 0) {
    mag = std::ldexp(float(mant), -24);  // subnormal (or zero)
  } else if (exp == 31) {
    mag = mant ? std::numeric_limits<float>::quiet_NaN() : std::numeric_limits<float>::infinity();
  } else {
    return std::bit_cast<float>(sign | ((exp + 112) << 23) | (mant << 13));
  }
  return sign ? -mag : mag;
}

// float8_e4m3fn: bias 7, no infinities, S.1111.111 is NaN.
float f8e4m3_to_f32(std::uint8_t v) {
  bool neg = v & 0x80;
  std::uint32_t exp = (v >> 3) & 0xf, mant = v & 0x7;
  float mag;
  if (exp == 0xf && mant == 0x7)
    mag = std::numeric_limits<float>::quiet_NaN();
  else if (exp == 0)
    mag = std::ldexp(float(mant), -9);  // subnormal: mant/8 * 2^-6
  else
    mag = std::ldexp(float(8 + mant), int(exp) - 10);
  return neg ? -mag : mag;
}

void convert_run(DType t, const std::byte* src, std::size_t n, float* dst) {
  switch (t) {
    case DType::f32:
      std::memcpy(dst, src, n * 4);
      return;
    case DType::bf16:  // its own loop, without a dtype test inside: it vectorizes (the bulk of a load)
      for (std::size_t i = 0; i < n; ++i) {
        std::uint16_t v;
        std::memcpy(&v, src + 2 * i, 2);
        dst[i] = bf16_to_f32(v);
      }
      return;
    case DType::f16:
      for (std::size_t i = 0; i < n; ++i) {
        std::uint16_t v;
        std::memcpy(&v, src + 2 * i, 2);
        dst[i] = f16_to_f32(v);
      }
      return;
    case DType::f8_e4m3:
      for (std::size_t i = 0; i < n; ++i) dst[i] = f8e4m3_to_f32(static_cast<std::uint8_t>(src[i]));
      return;
    case DType::u8:
      for (std::size_t i = 0; i < n; ++i) dst[i] = float(static_cast<std::uint8_t>(src[i]));
      return;
    case DType::i32:
      for (std::size_t i = 0; i < n; ++i) {
        std::int32_t v;
        std::memcpy(&v, src + 4 * i, 4);
        dst[i] = float(v);
      }
      return;
    case DType::i64:
      for (std::size_t i = 0; i < n; ++i) {
        std::int64_t v;
        std::memcpy(&v, src + 8 * i, 8);
        dst[i] = float(v);
      }
      return;
  }
}

void check_fp8_scale(const TensorView& t, const TensorView& s, std::int64_t block) {
  if (t.shape.size() != 2)
    throw CheckpointError("checkpoint: tensor '" + t.name + "': block scales need a 2-D weight");
  std::vector<std::int64_t> want = {(t.shape[0] + block - 1) / block, (t.shape[1] + block - 1) / block};
  if (s.shape != want || s.dtype != DType::f32)
    throw CheckpointError("checkpoint: tensor '" + s.name + "' must be F32 of shape [" + std::to_string(want[0]) +
                          ", " + std::to_string(want[1]) + "] to scale '" + t.name + "'");
}

std::vector<float> to_f32(const TensorView& t, const TensorView* fp8_scale_inv) {
  return to_f32_blocked(t, fp8_scale_inv, 128);
}

std::vector<float> to_f32_blocked(const TensorView& t, const TensorView* scale_inv, std::int64_t block) {
  std::vector<float> out(std::size_t(t.numel()));
  convert_run(t.dtype, t.data, out.size(), out.data());
  if (!scale_inv) return out;
  check_fp8_scale(t, *scale_inv, block);
  auto rows = t.shape[0], cols = t.shape[1], scols = scale_inv->shape[1];
  const float* s = reinterpret_cast<const float*>(scale_inv->data);
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < cols; ++c) {
      float sc;
      std::memcpy(&sc, s + (r / block) * scols + c / block, 4);  // the mapping may not be 4-aligned
      out[r * cols + c] *= sc;
    }
  return out;
}

}  // namespace troupe
