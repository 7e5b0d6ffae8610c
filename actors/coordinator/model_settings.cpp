#include "actors/coordinator/model_settings.hpp"

#include "actors/gpu_worker/cpu_backend.hpp"
#include "model/config/model_config.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

namespace troupe {

std::optional<std::uint32_t> model_max_len(const std::string& model_dir) {
  if (model_dir.empty()) return std::nullopt;
  std::ifstream in(std::filesystem::path(model_dir) / "config.json");
  if (!in) return std::nullopt;  // a tokenizer-only directory (sim) or a missing model: reported where loaded
  auto j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;  // the model loader names the problem
  // vLLM's _get_and_verify_max_len: the smallest of the keys an architecture may use for it.
  std::optional<std::uint32_t> len;
  for (const char* key : {"max_position_embeddings", "n_positions", "max_seq_len", "seq_length",
                          "max_sequence_length", "max_seq_length", "seq_len"}) {
    auto it = j.find(key);
    if (it == j.end() || !it->is_number_integer() || it->get<std::int64_t>() <= 0) continue;
    auto v = static_cast<std::uint32_t>(std::min<std::int64_t>(it->get<std::int64_t>(), INT32_MAX));
    len = len ? std::min(*len, v) : v;
  }
  return len;
}

void resolve_model_settings(Config& c) {
  // A vLLM user who asks for an fp8 KV cache expects it; serving bf16 instead would silently halve the cache.
  if (c.backend != "sim" && c.kv_cache_dtype.rfind("fp8", 0) == 0)
    throw ConfigError("config key 'kv-cache-dtype': " + c.kv_cache_dtype + " is not implemented by the " +
                      c.backend + " backend yet (its KV cache is " +
                      (c.backend == "cuda" ? "bfloat16" : "float32") + "); use auto");
  if (c.model.empty() && c.backend != "sim") c.model = default_model_dir();
  auto model_len = model_max_len(c.model);
  if (!model_len) return;  // no model (sim): the configured value, 4096 by default
  if (!c.is_set("max-model-len")) {
    c.max_model_len = static_cast<int>(*model_len);
  } else if (static_cast<std::uint32_t>(c.max_model_len) > *model_len) {
    // Positions past the model's training length give garbage; vLLM refuses too.
    throw ConfigError("config key 'max-model-len': " + std::to_string(c.max_model_len) +
                      " is larger than the model's maximum length " + std::to_string(*model_len) +
                      " (max_position_embeddings in " + c.model + "/config.json); leave max-model-len unset "
                      "to use the model's, or set it to at most " + std::to_string(*model_len));
  }
}

std::shared_ptr<const TextCodec> make_codec(const Config& c) {
  if (c.skip_tokenizer_init) {
    std::error_code ec;
    if (c.model.empty() || !std::filesystem::exists(std::filesystem::path(c.model) / "config.json", ec))
      return make_token_id_codec(c.sim_vocab_size, -1);  // sim without a model config: its own vocabulary
    ModelConfig m = load_model_config(c.model);
    return make_token_id_codec(static_cast<std::int32_t>(m.vocab_size), m.eos_token_id.value_or(-1));
  }
  if (c.model.empty()) return std::make_shared<ByteCodec>();
  return load_tokenizer_codec(c.model);
}

}  // namespace troupe
