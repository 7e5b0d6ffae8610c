#pragma once
// What a deployment takes from its model directory before anything starts, as vLLM does: the embedded
// default model, max-model-len from config.json, the text codec (or none, with skip-tokenizer-init) and
// generation_config.json's sampling defaults.
#include "model/codec/text_codec.hpp"
#include "model/config/generation_config.hpp"
#include "runtime/config/config.hpp"

#include <memory>
#include <optional>

namespace troupe {

// Fills `model` for a backend that runs one and an empty `model`, and max-model-len from the model when
// the user did not set it. Throws ConfigError naming max-model-len when the user's value is larger than
// the model's. Idempotent: serve checks it before starting, the coordinator applies it again.
void resolve_model_settings(Config& c);

// The model's context length: the smallest of config.json's length keys (max_position_embeddings, ...);
// none without a readable config.json that has one.
std::optional<std::uint32_t> model_max_len(const std::string& model_dir);

// No model: the sim backend's byte vocabulary; skip-tokenizer-init: token ids only; else the model's
// tokenizer and chat template. Throws std::runtime_error (or ModelConfigError) naming the file.
std::shared_ptr<const TextCodec> make_codec(const Config& c);

}  // namespace troupe
