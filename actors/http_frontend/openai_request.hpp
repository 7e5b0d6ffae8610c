#pragma once
// The OpenAI request bodies, parsed once at the edge into native types; no raw JSON travels further.
// Every rejection names the offending field (`param`) and maps to an HTTP status, as the OpenAI API does.
#include "model/config/generation_config.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace troupe {

struct ApiError {
  int status = 400;
  std::string message;
  std::string type = "BadRequestError";
  std::string param;  // empty: null
  std::string json() const;
};

enum class ApiKind { completion, chat };

struct GenerationRequest {
  ApiKind kind = ApiKind::completion;
  std::string model;
  // Exactly one of: a text prompt, token ids, chat messages.
  std::string prompt_text;
  std::vector<std::int32_t> prompt_ids;
  bool prompt_is_ids = false;
  // chat: what the template sees (messages with text content, add_generation_prompt, tools,
  // chat_template_kwargs merged in), kept as ordered JSON because templates iterate it as Python would.
  nlohmann::ordered_json chat_context;

  std::optional<std::uint32_t> max_tokens;  // unset: 16 for completions, the rest of max-model-len for chat
  bool stream = false;
  bool include_usage = false;
  bool echo = false;
  float temperature = 1.0f, top_p = 1.0f, min_p = 0.0f;
  std::int32_t top_k = -1;
  std::optional<std::uint64_t> seed;
  std::vector<std::string> stop;
  std::vector<std::int32_t> stop_token_ids;
  bool ignore_eos = false;
  std::uint32_t min_tokens = 0;
  float presence_penalty = 0, frequency_penalty = 0, repetition_penalty = 1;
  bool skip_special_tokens = true;
  std::uint32_t n = 1;  // choices; each is its own engine request (seed + index when seeded, as vLLM)
  std::string user;
  // Top-N logprobs per generated token (completions `logprobs`; chat `top_logprobs` when `logprobs` is true,
  // 0 by default); unset: none. N is capped at kMaxLogprobs, vLLM's default max-logprobs.
  std::optional<std::int32_t> logprobs;
  // vLLM's prompt_logprobs: per prompt token its logprob, rank and the top N (capped like logprobs); not
  // with streaming when N > 0. Completions with echo and logprobs get it set to logprobs (as vLLM), so the
  // echoed prompt carries logprobs too.
  std::optional<std::int32_t> prompt_logprobs;
  bool return_token_ids = false;            // vLLM: prompt_token_ids and each choice's token_ids
  bool return_tokens_as_token_ids = false;  // vLLM: logprob token strings become "token_id:N"
};
inline constexpr std::int32_t kMaxLogprobs = 20;

// POST /tokenize: {prompt} or {messages, add_generation_prompt}, add_special_tokens.
struct TokenizeRequest {
  std::string model;
  bool is_chat = false;
  std::string prompt;
  nlohmann::ordered_json chat_context;
  std::optional<bool> add_special_tokens;  // unset: true for a prompt, false for messages (as vLLM)
};
std::variant<TokenizeRequest, ApiError> parse_tokenize_request(const std::string& body);

// POST /detokenize: {tokens}.
struct DetokenizeRequest {
  std::string model;
  std::vector<std::int32_t> tokens;
};
std::variant<DetokenizeRequest, ApiError> parse_detokenize_request(const std::string& body);

// Parses and validates a body. `kind` picks the endpoint's shape. `defaults` (the model's
// generation_config.json) replace the API's defaults for the sampling fields the body leaves unset;
// max_new_tokens is applied where max_tokens is resolved (it needs the prompt length).
std::variant<GenerationRequest, ApiError> parse_generation_request(const std::string& body, ApiKind kind,
                                                                   const GenerationDefaults& defaults = {});

}  // namespace troupe
