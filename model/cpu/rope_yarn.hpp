#pragma once
// Rotary position embedding of DeepSeek's MLA rope dims, as transformers computes it: plain RoPE, or YaRN
// (rope_scaling type "yarn") with its blended inverse frequencies and the attention factor that scales
// cos and sin. Also the softmax scale, which YaRN multiplies by mscale(factor, mscale_all_dim)^2.
#include "model/config/model_config.hpp"

#include <cstdint>
#include <vector>

namespace troupe::cpu {

struct Rope {
  std::vector<float> inv_freq;  // dim / 2 frequencies, float32 as transformers builds them
  float attention_factor = 1;   // multiplies cos and sin
  // true: pairs (x0, x1), (x2, x3) ... share a frequency (DeepSeek checkpoints); false: (x_i, x_{i+dim/2}).
  bool interleave = true;
  std::uint32_t dim() const { return static_cast<std::uint32_t>(2 * inv_freq.size()); }
  // Rotates one head's rope dims in place. The interleaved form stays interleaved: transformers' V3
  // code de-interleaves q and k alike before rotate_half, which leaves every q.k product unchanged.
  void apply(float* x, std::uint32_t pos) const;
};

Rope make_rope(const ModelConfig& c);   // over c.qk_rope_head_dim
double softmax_scale(const ModelConfig& c);  // qk_head_dim^-0.5, times mscale^2 under YaRN
double yarn_get_mscale(double scale, double mscale);

}  // namespace troupe::cpu
