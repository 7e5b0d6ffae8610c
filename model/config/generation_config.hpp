#pragma once
// A Hugging Face generation_config.json's sampling defaults, as vLLM (generation-config auto) takes
// them: temperature, top_p, top_k, min_p, repetition_penalty and max_new_tokens become the defaults of
// the requests that leave those fields unset. Keys the file lacks stay unset (the API's own defaults).
#include <cstdint>
#include <optional>
#include <string>

namespace troupe {

struct GenerationDefaults {
  std::optional<float> temperature, top_p, min_p, repetition_penalty;
  std::optional<std::int32_t> top_k;             // -1: off (the file's 0 or negative)
  std::optional<std::uint32_t> max_new_tokens;   // the default max_tokens
  bool empty() const {
    return !temperature && !top_p && !min_p && !repetition_penalty && !top_k && !max_new_tokens;
  }
  std::string describe() const;  // "temperature=0.6, top_p=0.95" for the startup log
};

// Throws ModelConfigError (model_config.hpp) naming the field for a value of the wrong type or range.
GenerationDefaults parse_generation_config_text(const std::string& json_text);
// MODEL_DIR/generation_config.json; no file (or an empty dir name) gives no defaults.
GenerationDefaults load_generation_config(const std::string& model_dir);

}  // namespace troupe
