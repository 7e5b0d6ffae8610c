#define BOOST_TEST_MODULE model_config
#include "model/config/model_config.hpp"
#include "model/config/generation_config.hpp"

#include <boost/test/unit_test.hpp>

using namespace troupe;

namespace {
const std::string kData = std::string(TROUPE_SOURCE_DIR) + "/tests/data/configs/";

std::string llama_json(const std::string& extra = "") {
  return R"({"architectures": ["LlamaForCausalLM"], "vocab_size": 512, "hidden_size": 64,
    "intermediate_size": 172, "num_hidden_layers": 5, "num_attention_heads": 8, "num_key_value_heads": 4,
    "rms_norm_eps": 1e-5, "tie_word_embeddings": true, "bos_token_id": 1, "eos_token_id": [2, 3])" +
         extra + "}";
}

bool error_mentions(const std::string& text, const std::string& needle) {
  try {
    parse_model_config_text(text);
  } catch (const ModelConfigError& e) {
    return std::string(e.what()).find(needle) != std::string::npos;
  }
  return false;
}
}  // namespace

BOOST_AUTO_TEST_CASE(deepseek_r1) {
  auto c = load_model_config(kData + "deepseek-r1");
  BOOST_TEST((c.arch == Arch::deepseek_v3));
  BOOST_TEST(c.architecture == "DeepseekV3ForCausalLM");
  BOOST_TEST(c.hidden_size == 7168u);
  BOOST_TEST(c.num_hidden_layers == 61u);
  BOOST_TEST(c.q_lora_rank.value() == 1536u);
  BOOST_TEST(c.kv_lora_rank == 512u);
  BOOST_TEST(c.head_dim == 192u);
  BOOST_TEST(c.v_head_dim == 128u);
  BOOST_TEST(c.n_routed_experts == 256u);
  BOOST_TEST(c.num_experts_per_tok == 8u);
  BOOST_TEST(c.n_group == 8u);
  BOOST_TEST(c.topk_group == 4u);
  BOOST_TEST(c.topk_method == "noaux_tc");
  BOOST_TEST(c.scoring_func == "sigmoid");
  BOOST_TEST(c.norm_topk_prob);
  BOOST_TEST(c.routed_scaling_factor == 2.5);
  BOOST_TEST(c.first_k_dense_replace == 3u);
  BOOST_TEST(!c.is_moe_layer(2));
  BOOST_TEST(c.is_moe_layer(3));
  BOOST_TEST(c.fp8_block.value().first == 128u);
  BOOST_TEST(c.fp8_block.value().second == 128u);
  BOOST_TEST(c.rope_scaling.type == "yarn");
  BOOST_TEST(c.rope_scaling.factor == 40.0);
  BOOST_TEST(c.rope_scaling.original_max_position_embeddings == 4096u);
  BOOST_TEST(c.rope_scaling.mscale_all_dim == 1.0);
  BOOST_TEST(c.bos_token_id.value() == 0);
  BOOST_TEST(c.eos_token_id.value() == 1);
  BOOST_TEST(c.vocab_size == 129280u);
}

BOOST_AUTO_TEST_CASE(deepseek_v3_same_architecture) {
  auto c = load_model_config(kData + "deepseek-v3");
  BOOST_TEST((c.arch == Arch::deepseek_v3));
  BOOST_TEST(c.fp8_block.has_value());
}

BOOST_AUTO_TEST_CASE(deepseek_v2_lite) {
  auto c = load_model_config(kData + "deepseek-v2-lite");
  BOOST_TEST((c.arch == Arch::deepseek_v2));
  BOOST_TEST(!c.q_lora_rank.has_value());
  BOOST_TEST(c.scoring_func == "softmax");
  BOOST_TEST(c.topk_method == "greedy");
  BOOST_TEST(!c.norm_topk_prob);
  BOOST_TEST(c.n_shared_experts == 2u);
  BOOST_TEST(c.n_routed_experts == 64u);
  BOOST_TEST(c.num_experts_per_tok == 6u);
  BOOST_TEST(c.first_k_dense_replace == 1u);
  BOOST_TEST(!c.fp8_block.has_value());
  BOOST_TEST(c.rope_scaling.mscale == 0.707);
}

BOOST_AUTO_TEST_CASE(llama) {
  auto c = parse_model_config_text(llama_json());
  BOOST_TEST((c.arch == Arch::llama));
  BOOST_TEST(c.head_dim == 8u);
  BOOST_TEST(c.num_key_value_heads == 4u);
  BOOST_TEST(c.tie_word_embeddings);
  BOOST_TEST(c.eos_token_id.value() == 2);
  BOOST_TEST(c.rope_theta == 10000.0);
  BOOST_TEST(!c.attention_bias);
  auto l3 = parse_model_config_text(llama_json(R"(, "rope_scaling": {"rope_type": "llama3", "factor": 8.0,
      "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192})"));
  BOOST_TEST(l3.rope_scaling.type == "llama3");
  BOOST_TEST(l3.rope_scaling.factor == 8.0);
  BOOST_TEST(l3.rope_scaling.original_max_position_embeddings == 8192u);
}

BOOST_AUTO_TEST_CASE(qwen2_has_bias) {
  std::string j = llama_json();
  j.replace(j.find("LlamaForCausalLM"), 16, "Qwen2ForCausalLM");
  auto c = parse_model_config_text(j);
  BOOST_TEST((c.arch == Arch::qwen2));
  BOOST_TEST(c.attention_bias);
}

BOOST_AUTO_TEST_CASE(refusals_name_the_problem) {
  std::string j = llama_json();
  j.replace(j.find("LlamaForCausalLM"), 16, "MistralForCausalLM");
  BOOST_TEST(error_mentions(j, "architecture 'MistralForCausalLM' is not supported"));
  BOOST_TEST(error_mentions(R"({"architectures": ["LlamaForCausalLM"]})", "missing field 'vocab_size'"));
  BOOST_TEST(error_mentions("{nope", "not valid JSON"));
  BOOST_TEST(error_mentions(llama_json(R"(, "rope_scaling": {"type": "dynamic", "factor": 2})"), "dynamic"));
  std::string bad_kv = llama_json();
  bad_kv.replace(bad_kv.find("\"num_key_value_heads\": 4"), 24, "\"num_key_value_heads\": 3");
  BOOST_TEST(error_mentions(bad_kv, "num_key_value_heads"));
  BOOST_CHECK_THROW(load_model_config("/nonexistent-dir"), ModelConfigError);
}

// generation_config.json's sampling fields become request defaults, as vLLM's to_diff_dict takes them.
BOOST_AUTO_TEST_CASE(generation_config_defaults) {
  auto d = parse_generation_config_text(
      R"({"bos_token_id": 0, "do_sample": true, "temperature": 0.6, "top_p": 0.95, "top_k": 20,
          "repetition_penalty": 1.1, "max_new_tokens": 64, "min_p": 0.05})");
  BOOST_TEST(*d.temperature == 0.6f);
  BOOST_TEST(*d.top_p == 0.95f);
  BOOST_TEST(*d.top_k == 20);
  BOOST_TEST(*d.min_p == 0.05f);
  BOOST_TEST(*d.repetition_penalty == 1.1f);
  BOOST_TEST(*d.max_new_tokens == 64u);
  BOOST_TEST(d.describe().find("top_k=20") != std::string::npos);
  // transformers' own defaults (temperature 1, top_k 50) are not the model's: vLLM drops them too.
  auto same = parse_generation_config_text(R"({"temperature": 1.0, "top_k": 50, "top_p": 1.0})");
  BOOST_TEST(same.empty());
  BOOST_TEST(*parse_generation_config_text(R"({"top_k": 0})").top_k == -1);
  BOOST_TEST(load_generation_config(kData + "no-such-model").empty());
  BOOST_TEST(load_generation_config(std::string(TROUPE_SOURCE_DIR) + "/models/stories260K").empty());
  BOOST_CHECK_THROW(parse_generation_config_text(R"({"temperature": "hot"})"), ModelConfigError);
  BOOST_CHECK_THROW(parse_generation_config_text(R"({"max_new_tokens": 0})"), ModelConfigError);
}
