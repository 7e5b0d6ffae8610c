#include "model/config/model_config.hpp"

#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>

namespace troupe {
namespace {

using json = nlohmann::json;

[[noreturn]] void fail(const std::string& msg) { throw ModelConfigError("config.json: " + msg); }

// A required unsigned field; `fallback` set means the field is optional.
std::uint32_t get_u32(const json& j, const char* key, std::optional<std::uint32_t> fallback = std::nullopt) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (fallback) return *fallback;
    fail(std::string("missing field '") + key + "'");
  }
  if (!it->is_number_integer() || it->get<std::int64_t>() < 0 || it->get<std::int64_t>() > 0xffffffffLL)
    fail(std::string("field '") + key + "' must be a non-negative integer, got " + it->dump());
  return it->get<std::uint32_t>();
}

double get_f64(const json& j, const char* key, double fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_number()) fail(std::string("field '") + key + "' must be a number, got " + it->dump());
  return it->get<double>();
}

bool get_bool(const json& j, const char* key, bool fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) fail(std::string("field '") + key + "' must be true or false, got " + it->dump());
  return it->get<bool>();
}

std::string get_str(const json& j, const char* key, const std::string& fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_string()) fail(std::string("field '") + key + "' must be a string, got " + it->dump());
  return it->get<std::string>();
}

// Llama-3 lists several eos ids; the first is the one generation_config names first too.
std::optional<std::int32_t> get_token_id(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  const json& v = it->is_array() && !it->empty() ? it->front() : *it;
  if (!v.is_number_integer()) fail(std::string("field '") + key + "' must be a token id, got " + it->dump());
  return v.get<std::int32_t>();
}

Arch parse_arch(const json& j, std::string& name) {
  auto it = j.find("architectures");
  if (it == j.end() || !it->is_array() || it->empty() || !it->front().is_string())
    fail("missing field 'architectures' (a list naming the model class)");
  name = it->front().get<std::string>();
  if (name == "LlamaForCausalLM") return Arch::llama;
  if (name == "Qwen2ForCausalLM") return Arch::qwen2;
  if (name == "DeepseekV2ForCausalLM") return Arch::deepseek_v2;
  if (name == "DeepseekV3ForCausalLM") return Arch::deepseek_v3;
  fail("architecture '" + name +
       "' is not supported (supported: LlamaForCausalLM, Qwen2ForCausalLM, DeepseekV2ForCausalLM, "
       "DeepseekV3ForCausalLM)");
}

void parse_rope_scaling(const json& j, ModelConfig& c) {
  auto it = j.find("rope_scaling");
  if (it == j.end() || it->is_null()) return;
  if (!it->is_object()) fail("field 'rope_scaling' must be an object");
  const json& r = *it;
  auto& s = c.rope_scaling;
  s.type = get_str(r, "rope_type", get_str(r, "type", ""));
  if (s.type == "default") s.type.clear();
  if (!s.type.empty() && s.type != "yarn" && s.type != "llama3" && s.type != "linear")
    fail("rope_scaling type '" + s.type + "' is not supported (supported: yarn, llama3, linear)");
  s.factor = get_f64(r, "factor", 1.0);
  s.original_max_position_embeddings = get_u32(r, "original_max_position_embeddings", 0u);
  s.beta_fast = get_f64(r, "beta_fast", 32);
  s.beta_slow = get_f64(r, "beta_slow", 1);
  s.mscale = get_f64(r, "mscale", 1);
  s.mscale_all_dim = get_f64(r, "mscale_all_dim", 0);
  s.low_freq_factor = get_f64(r, "low_freq_factor", 1);
  s.high_freq_factor = get_f64(r, "high_freq_factor", 4);
}

void parse_deepseek(const json& j, ModelConfig& c) {
  if (auto it = j.find("q_lora_rank"); it != j.end() && !it->is_null()) c.q_lora_rank = get_u32(j, "q_lora_rank");
  c.kv_lora_rank = get_u32(j, "kv_lora_rank");
  c.qk_nope_head_dim = get_u32(j, "qk_nope_head_dim");
  c.qk_rope_head_dim = get_u32(j, "qk_rope_head_dim");
  c.v_head_dim = get_u32(j, "v_head_dim");
  c.head_dim = c.qk_nope_head_dim + c.qk_rope_head_dim;  // the width of one q/k head
  c.n_routed_experts = get_u32(j, "n_routed_experts", 0u);
  c.n_shared_experts = get_u32(j, "n_shared_experts", 0u);
  c.num_experts_per_tok = get_u32(j, "num_experts_per_tok", 0u);
  c.moe_intermediate_size = get_u32(j, "moe_intermediate_size", 0u);
  c.first_k_dense_replace = get_u32(j, "first_k_dense_replace", 0u);
  c.moe_layer_freq = get_u32(j, "moe_layer_freq", 1u);
  c.n_group = get_u32(j, "n_group", 1u);
  c.topk_group = get_u32(j, "topk_group", 1u);
  bool v3 = c.arch == Arch::deepseek_v3;
  c.topk_method = get_str(j, "topk_method", v3 ? "noaux_tc" : "greedy");
  c.scoring_func = get_str(j, "scoring_func", v3 ? "sigmoid" : "softmax");
  c.norm_topk_prob = get_bool(j, "norm_topk_prob", false);
  c.routed_scaling_factor = get_f64(j, "routed_scaling_factor", 1.0);
  c.rope_interleave = get_bool(j, "rope_interleave", true);
  if (c.topk_method != "greedy" && c.topk_method != "group_limited_greedy" && c.topk_method != "noaux_tc")
    fail("topk_method '" + c.topk_method + "' is not supported (greedy, group_limited_greedy, noaux_tc)");
  if (c.scoring_func != "softmax" && c.scoring_func != "sigmoid")
    fail("scoring_func '" + c.scoring_func + "' is not supported (softmax, sigmoid)");
  if (c.n_routed_experts > 0) {
    if (c.num_experts_per_tok == 0 || c.num_experts_per_tok > c.n_routed_experts)
      fail("field 'num_experts_per_tok' must be in 1..n_routed_experts");
    if (c.moe_intermediate_size == 0) fail("missing field 'moe_intermediate_size'");
    if (c.n_group == 0 || c.n_routed_experts % c.n_group != 0)
      fail("field 'n_group' must divide n_routed_experts");
    if (c.topk_group == 0 || c.topk_group > c.n_group) fail("field 'topk_group' must be in 1..n_group");
    if (c.moe_layer_freq == 0) fail("field 'moe_layer_freq' must be >= 1");
  }
}

void parse_quantization(const json& j, ModelConfig& c) {
  auto it = j.find("quantization_config");
  if (it == j.end() || it->is_null()) return;
  std::string method = get_str(*it, "quant_method", "");
  if (method != "fp8") fail("quantization_config quant_method '" + method + "' is not supported (fp8)");
  auto b = it->find("weight_block_size");
  if (b == it->end() || !b->is_array() || b->size() != 2 || !(*b)[0].is_number_integer() ||
      !(*b)[1].is_number_integer() || (*b)[0].get<int>() <= 0 || (*b)[1].get<int>() <= 0)
    fail("quantization_config 'weight_block_size' must be two positive integers");
  c.fp8_block = std::make_pair((*b)[0].get<std::uint32_t>(), (*b)[1].get<std::uint32_t>());
}

}  // namespace

ModelConfig parse_model_config_text(const std::string& json_text) {
  json j;
  try {
    j = json::parse(json_text);
  } catch (const json::exception& e) {
    fail(std::string("not valid JSON: ") + e.what());
  }
  if (!j.is_object()) fail("not a JSON object");
  ModelConfig c;
  c.arch = parse_arch(j, c.architecture);
  c.vocab_size = get_u32(j, "vocab_size");
  c.hidden_size = get_u32(j, "hidden_size");
  c.intermediate_size = get_u32(j, "intermediate_size");
  c.num_hidden_layers = get_u32(j, "num_hidden_layers");
  c.num_attention_heads = get_u32(j, "num_attention_heads");
  c.num_key_value_heads = get_u32(j, "num_key_value_heads", c.num_attention_heads);
  if (c.hidden_size == 0 || c.num_attention_heads == 0 || c.num_hidden_layers == 0 || c.vocab_size == 0)
    fail("hidden_size, num_attention_heads, num_hidden_layers and vocab_size must be positive");
  c.head_dim = get_u32(j, "head_dim", c.hidden_size / c.num_attention_heads);
  c.max_position_embeddings = get_u32(j, "max_position_embeddings", 2048u);
  c.rms_norm_eps = get_f64(j, "rms_norm_eps", 1e-6);
  c.rope_theta = get_f64(j, "rope_theta", 10000.0);
  c.tie_word_embeddings = get_bool(j, "tie_word_embeddings", false);
  c.attention_bias = get_bool(j, "attention_bias", c.arch == Arch::qwen2);
  c.bos_token_id = get_token_id(j, "bos_token_id");
  c.eos_token_id = get_token_id(j, "eos_token_id");
  c.torch_dtype = get_str(j, "torch_dtype", get_str(j, "dtype", "bfloat16"));
  parse_rope_scaling(j, c);
  parse_quantization(j, c);
  if (c.is_deepseek()) {
    parse_deepseek(j, c);
  } else if (c.num_key_value_heads == 0 || c.num_attention_heads % c.num_key_value_heads != 0) {
    fail("field 'num_key_value_heads' must divide num_attention_heads");
  }
  return c;
}

ModelConfig load_model_config(const std::string& model_dir) {
  std::string path = model_dir + "/config.json";
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ModelConfigError("cannot open '" + path + "'");
  std::stringstream ss;
  ss << in.rdbuf();
  try {
    return parse_model_config_text(ss.str());
  } catch (const ModelConfigError& e) {
    throw ModelConfigError("'" + path + "': " + e.what());
  }
}

}  // namespace troupe
