#pragma once
// A Hugging Face config.json, parsed for the architectures Troupe serves. Unknown architectures and
// missing or inconsistent fields are refused with a message naming the field.
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace troupe {

struct ModelConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

enum class Arch { llama, qwen2, deepseek_v2, deepseek_v3 };

struct RopeScaling {             // rope_scaling; type "yarn" for DeepSeek, "llama3" for Llama-3.1
  std::string type;              // "" = none
  double factor = 1.0;
  std::uint32_t original_max_position_embeddings = 0;
  double beta_fast = 32, beta_slow = 1, mscale = 1, mscale_all_dim = 0;
  double low_freq_factor = 1, high_freq_factor = 4;  // llama3
};

struct ModelConfig {
  Arch arch = Arch::llama;
  std::string architecture;      // as written, e.g. "DeepseekV3ForCausalLM"
  std::uint32_t vocab_size = 0, hidden_size = 0, intermediate_size = 0, num_hidden_layers = 0;
  std::uint32_t num_attention_heads = 0, num_key_value_heads = 0, head_dim = 0;
  std::uint32_t max_position_embeddings = 0;
  double rms_norm_eps = 1e-6, rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = false;
  bool attention_bias = false;   // qwen2: q/k/v biases
  std::optional<std::int32_t> bos_token_id, eos_token_id;
  std::string torch_dtype;       // "bfloat16", ...
  // DeepSeek (MLA + MoE)
  std::optional<std::uint32_t> q_lora_rank;  // none in V2-Lite
  std::uint32_t kv_lora_rank = 0, qk_nope_head_dim = 0, qk_rope_head_dim = 0, v_head_dim = 0;
  std::uint32_t n_routed_experts = 0, n_shared_experts = 0, num_experts_per_tok = 0, moe_intermediate_size = 0;
  std::uint32_t first_k_dense_replace = 0, moe_layer_freq = 1, n_group = 1, topk_group = 1;
  std::string topk_method;       // "greedy" (V2) | "group_limited_greedy" | "noaux_tc" (V3)
  std::string scoring_func = "softmax";  // "sigmoid" for V3
  bool norm_topk_prob = false;
  double routed_scaling_factor = 1.0;
  bool rope_interleave = true;   // DeepSeek checkpoints rotate interleaved pairs
  // FP8 block quantization (quantization_config): weight_block_size {128, 128} when present
  std::optional<std::pair<std::uint32_t, std::uint32_t>> fp8_block;

  bool is_deepseek() const { return arch == Arch::deepseek_v2 || arch == Arch::deepseek_v3; }
  bool is_moe_layer(std::uint32_t layer) const {
    return is_deepseek() && n_routed_experts > 0 && layer >= first_k_dense_replace && layer % moe_layer_freq == 0;
  }
};

ModelConfig parse_model_config_text(const std::string& json_text);  // throws ModelConfigError
ModelConfig load_model_config(const std::string& model_dir);        // reads MODEL_DIR/config.json

}  // namespace troupe
