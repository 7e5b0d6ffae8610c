#include "model/cpu/rope_yarn.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace troupe::cpu {

double yarn_get_mscale(double scale, double mscale) {
  if (scale <= 1) return 1.0;
  return 0.1 * mscale * std::log(scale) + 1.0;
}

namespace {

bool is_yarn(const ModelConfig& c) { return c.rope_scaling.type == "yarn"; }

// transformers' find_correction_dim: the dim index whose wavelength fits `rotations` turns in `max_pos`.
double correction_dim(double rotations, double dim, double base, double max_pos) {
  return dim * std::log(max_pos / (rotations * 2 * std::numbers::pi)) / (2 * std::log(base));
}

// _compute_yarn_parameters, step by step in float32 where transformers uses float32 tensors.
std::vector<float> yarn_inv_freq(const ModelConfig& c, std::uint32_t dim) {
  const RopeScaling& s = c.rope_scaling;
  const float base = static_cast<float>(c.rope_theta), factor = static_cast<float>(s.factor);
  const double orig = s.original_max_position_embeddings;
  // truncate (the default): floor / ceil, then clamp into [0, dim - 1]
  double low = std::floor(correction_dim(s.beta_fast, dim, c.rope_theta, orig));
  double high = std::ceil(correction_dim(s.beta_slow, dim, c.rope_theta, orig));
  low = std::max(low, 0.0);
  high = std::min(high, double(dim - 1));
  if (low == high) high += 0.001;  // transformers' guard against a zero-width ramp
  std::vector<float> inv(dim / 2);
  for (std::uint32_t i = 0; i < dim / 2; ++i) {
    const float pos_freq = std::pow(base, float(2 * i) / float(dim));
    const float extrapolation = 1.0f / pos_freq, interpolation = 1.0f / (factor * pos_freq);
    const float ramp = std::clamp(float((float(i) - float(low)) / float(high - low)), 0.0f, 1.0f);
    const float extrapolation_factor = 1.0f - ramp;
    inv[i] = interpolation * (1.0f - extrapolation_factor) + extrapolation * extrapolation_factor;
  }
  return inv;
}

}  // namespace

Rope make_rope(const ModelConfig& c) {
  const std::uint32_t dim = c.qk_rope_head_dim;
  Rope r;
  // transformers' DeepseekV2 rotates interleaved pairs always; V3 follows rope_interleave.
  r.interleave = c.arch == Arch::deepseek_v2 || c.rope_interleave;
  if (is_yarn(c)) {
    r.inv_freq = yarn_inv_freq(c, dim);
    const RopeScaling& s = c.rope_scaling;
    // transformers: mscale / mscale_all_dim ratio when both are set, else get_mscale(factor) alone
    r.attention_factor = (s.mscale != 0 && s.mscale_all_dim != 0)
                             ? float(yarn_get_mscale(s.factor, s.mscale) / yarn_get_mscale(s.factor, s.mscale_all_dim))
                             : float(yarn_get_mscale(s.factor, 1.0));
  } else {
    r.inv_freq.resize(dim / 2);
    for (std::uint32_t i = 0; i < dim / 2; ++i)
      r.inv_freq[i] = 1.0f / std::pow(float(c.rope_theta), float(2 * i) / float(dim));
  }
  return r;
}

double softmax_scale(const ModelConfig& c) {
  double scale = 1.0 / std::sqrt(double(c.qk_nope_head_dim + c.qk_rope_head_dim));
  if (is_yarn(c) && c.rope_scaling.mscale_all_dim != 0) {
    const double m = yarn_get_mscale(c.rope_scaling.factor, c.rope_scaling.mscale_all_dim);
    scale *= m * m;
  }
  return scale;
}

void Rope::apply(float* x, std::uint32_t pos) const {
  const std::size_t half = inv_freq.size();
  for (std::size_t i = 0; i < half; ++i) {
    const float angle = float(pos) * inv_freq[i];
    const float c = std::cos(angle) * attention_factor, s = std::sin(angle) * attention_factor;
    float& a = interleave ? x[2 * i] : x[i];
    float& b = interleave ? x[2 * i + 1] : x[i + half];
    const float a0 = a, b0 = b;
    a = a0 * c - b0 * s;
    b = b0 * c + a0 * s;
  }
}

}  // namespace troupe::cpu
