#include "actors/http_frontend/openai_request.hpp"

#include <nlohmann/json.hpp>

#include <cmath>
#include <limits>

namespace troupe {

using json = nlohmann::ordered_json;

std::string ApiError::json() const {
  nlohmann::json e = {{"message", message}, {"type", type}, {"code", status}};
  e["param"] = param.empty() ? nlohmann::json(nullptr) : nlohmann::json(param);
  return nlohmann::json{{"error", e}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

namespace {

struct Bad {
  ApiError err;
};

[[noreturn]] void fail(const std::string& param, const std::string& msg) { throw Bad{{400, msg, "BadRequestError", param}}; }

const json* field(const json& body, const char* name) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return nullptr;
  return &*it;
}

bool get_bool(const json& body, const char* name, bool dflt) {
  auto f = field(body, name);
  if (!f) return dflt;
  if (!f->is_boolean()) fail(name, std::string("'") + name + "' must be a boolean");
  return f->get<bool>();
}

double get_number(const json& body, const char* name, double dflt, double lo, double hi) {
  auto f = field(body, name);
  if (!f) return dflt;
  if (!f->is_number()) fail(name, std::string("'") + name + "' must be a number");
  double v = f->get<double>();
  if (!std::isfinite(v) || v < lo || v > hi)
    fail(name, std::string("'") + name + "' must be between " + json(lo).dump() + " and " + json(hi).dump() +
                 ", got " + f->dump());
  return v;
}

std::int64_t get_int(const json& body, const char* name, std::int64_t dflt, std::int64_t lo, std::int64_t hi) {
  auto f = field(body, name);
  if (!f) return dflt;
  if (!f->is_number_integer() && !f->is_number_unsigned())
    fail(name, std::string("'") + name + "' must be an integer");
  if (f->is_number_unsigned() && f->get<std::uint64_t>() > std::uint64_t(hi))
    fail(name, std::string("'") + name + "' must be at most " + std::to_string(hi) + ", got " + f->dump());
  std::int64_t v = f->get<std::int64_t>();
  if (v < lo || v > hi)
    fail(name, std::string("'") + name + "' must be between " + std::to_string(lo) + " and " + std::to_string(hi) +
                 ", got " + f->dump());
  return v;
}

std::vector<std::int32_t> token_list(const json& arr, const char* name) {
  std::vector<std::int32_t> ids;
  for (auto& t : arr) {
    if (!t.is_number_integer() || t.get<std::int64_t>() < 0 || t.get<std::int64_t>() > INT32_MAX)
      fail(name, std::string("'") + name + "' must hold non-negative token ids");
    ids.push_back(static_cast<std::int32_t>(t.get<std::int64_t>()));
  }
  return ids;
}

void parse_prompt(const json& body, GenerationRequest& r) {
  auto p = field(body, "prompt");
  if (!p) fail("prompt", "'prompt' is required");
  if (p->is_string()) {
    r.prompt_text = p->get<std::string>();
  } else if (p->is_array() && !p->empty() && p->front().is_number()) {
    r.prompt_ids = token_list(*p, "prompt");
    r.prompt_is_ids = true;
  } else if (p->is_array() && p->size() == 1 && p->front().is_string()) {
    r.prompt_text = p->front().get<std::string>();
  } else if (p->is_array() && p->size() == 1 && p->front().is_array()) {
    r.prompt_ids = token_list(p->front(), "prompt");
    r.prompt_is_ids = true;
  } else if (p->is_array() && p->size() > 1) {
    fail("prompt", "batched prompts (a list of several prompts) are not supported yet; send one prompt per request");
  } else {
    fail("prompt", "'prompt' must be a string, a list of token ids, or a list of one of those");
  }
  if (!r.prompt_is_ids && r.prompt_text.empty()) fail("prompt", "'prompt' must not be empty");
  if (r.prompt_is_ids && r.prompt_ids.empty()) fail("prompt", "'prompt' must not be empty");
}

std::string message_content(const json& m) {
  auto c = m.find("content");
  if (c == m.end() || c->is_null()) return {};
  if (c->is_string()) return c->get<std::string>();
  if (c->is_array()) {  // OpenAI content parts: concatenate the text parts
    std::string s;
    for (auto& part : *c) {
      // Check each member's type before reading it: value("type", "") throws on a non-string "type".
      const auto type = part.is_object() ? part.find("type") : part.end();
      if (type == part.end() || !type->is_string() || *type != "text" || !part.contains("text") ||
          !part["text"].is_string())
        fail("messages", "only text content parts are supported");
      s += part["text"].get<std::string>();
    }
    return s;
  }
  fail("messages", "message 'content' must be a string or a list of text parts");
}

// The template context: messages with their content flattened to text (as vLLM does for text parts),
// every other message field (tool_calls, name, reasoning_content, ...) kept for the template.
json chat_context(const json& body) {
  auto m = field(body, "messages");
  if (!m) fail("messages", "'messages' is required");
  if (!m->is_array() || m->empty()) fail("messages", "'messages' must be a non-empty list");
  json msgs = json::array();
  for (auto& msg : *m) {
    if (!msg.is_object() || !msg.contains("role") || !msg["role"].is_string())
      fail("messages", "each message must be an object with a string 'role'");
    json copy = msg;
    if (msg.contains("content") && !msg["content"].is_null()) copy["content"] = message_content(msg);
    msgs.push_back(std::move(copy));
  }
  json ctx = {{"messages", std::move(msgs)}, {"add_generation_prompt", get_bool(body, "add_generation_prompt", true)}};
  if (auto t = field(body, "tools")) {
    if (!t->is_array()) fail("tools", "'tools' must be a list");
    ctx["tools"] = *t;
  }
  if (auto k = field(body, "chat_template_kwargs")) {
    if (!k->is_object()) fail("chat_template_kwargs", "'chat_template_kwargs' must be an object");
    for (auto& [key, v] : k->items()) ctx[key] = v;
  }
  return ctx;
}

void parse_stop(const json& body, GenerationRequest& r) {
  if (auto s = field(body, "stop")) {
    if (s->is_string()) {
      r.stop.push_back(s->get<std::string>());
    } else if (s->is_array()) {
      for (auto& x : *s) {
        if (!x.is_string()) fail("stop", "'stop' must be a string or a list of strings");
        r.stop.push_back(x.get<std::string>());
      }
    } else {
      fail("stop", "'stop' must be a string or a list of strings");
    }
    for (auto& x : r.stop)
      if (x.empty()) fail("stop", "stop strings must not be empty");
  }
  if (auto s = field(body, "stop_token_ids")) {
    if (!s->is_array()) fail("stop_token_ids", "'stop_token_ids' must be a list of token ids");
    r.stop_token_ids = token_list(*s, "stop_token_ids");
  }
}

// Completions: `logprobs` is the top-N count. Chat: `logprobs` (bool) switches them on and `top_logprobs`
// is N; a positive top_logprobs without logprobs is an error, as in vLLM.
void parse_logprobs(const json& body, GenerationRequest& r) {
  if (r.kind == ApiKind::completion) {
    auto lp = field(body, "logprobs");
    if (lp && lp->is_boolean() && !lp->get<bool>()) lp = nullptr;  // false: off
    if (lp) r.logprobs = static_cast<std::int32_t>(get_int(body, "logprobs", 0, 0, kMaxLogprobs));
  } else {
    bool on = get_bool(body, "logprobs", false);
    auto top = static_cast<std::int32_t>(get_int(body, "top_logprobs", 0, 0, kMaxLogprobs));
    if (top > 0 && !on) fail("top_logprobs", "when using 'top_logprobs', 'logprobs' must be set to true");
    if (on) r.logprobs = top;
  }
  if (field(body, "prompt_logprobs")) {
    r.prompt_logprobs = static_cast<std::int32_t>(get_int(body, "prompt_logprobs", 0, 0, kMaxLogprobs));
    if (r.stream && *r.prompt_logprobs > 0)
      fail("prompt_logprobs", "'prompt_logprobs' are not available when 'stream' is true");
  } else if (r.kind == ApiKind::completion && r.echo && r.logprobs) {
    r.prompt_logprobs = r.logprobs;  // the echoed prompt's logprobs come from the prompt's (vLLM)
  }
  r.return_token_ids = get_bool(body, "return_token_ids", false);
  r.return_tokens_as_token_ids = get_bool(body, "return_tokens_as_token_ids", false);
}

// A field the body leaves unset takes the model's default (`d`, generation_config.json), else the API's.
void parse_sampling(const json& body, GenerationRequest& r, const GenerationDefaults& d) {
  constexpr std::int64_t kMaxTok = std::numeric_limits<std::int32_t>::max();
  if (auto mt = field(body, "max_completion_tokens"); mt && r.kind == ApiKind::chat)
    r.max_tokens = static_cast<std::uint32_t>(get_int(body, "max_completion_tokens", 0, 1, kMaxTok));
  else if (field(body, "max_tokens"))
    r.max_tokens = static_cast<std::uint32_t>(get_int(body, "max_tokens", 0, 1, kMaxTok));
  r.temperature = static_cast<float>(get_number(body, "temperature", d.temperature.value_or(1.0f), 0.0, 100.0));
  r.top_p = static_cast<float>(get_number(body, "top_p", d.top_p.value_or(1.0f), 1e-9, 1.0));
  r.top_k = static_cast<std::int32_t>(get_int(body, "top_k", d.top_k.value_or(-1), -1, kMaxTok));
  if (r.top_k == 0) fail("top_k", "'top_k' must be -1 (off) or at least 1");
  r.min_p = static_cast<float>(get_number(body, "min_p", d.min_p.value_or(0.0f), 0.0, 1.0));
  if (field(body, "seed")) r.seed = static_cast<std::uint64_t>(get_int(body, "seed", 0, INT64_MIN, INT64_MAX));
  r.presence_penalty = static_cast<float>(get_number(body, "presence_penalty", 0.0, -2.0, 2.0));
  r.frequency_penalty = static_cast<float>(get_number(body, "frequency_penalty", 0.0, -2.0, 2.0));
  r.repetition_penalty =
      static_cast<float>(get_number(body, "repetition_penalty", d.repetition_penalty.value_or(1.0f), 1e-6, 100.0));
  r.ignore_eos = get_bool(body, "ignore_eos", false);
  r.min_tokens = static_cast<std::uint32_t>(get_int(body, "min_tokens", 0, 0, kMaxTok));
  r.n = static_cast<std::uint32_t>(get_int(body, "n", 1, 1, 128));
  parse_logprobs(body, r);
  parse_stop(body, r);
}

}  // namespace

namespace {
std::variant<json, ApiError> parse_object(const std::string& text) {
  json body = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) return ApiError{400, "the request body is not valid JSON", "BadRequestError", ""};
  if (!body.is_object()) return ApiError{400, "the request body must be a JSON object", "BadRequestError", ""};
  return body;
}

std::string model_field(const json& body) {
  auto m = field(body, "model");
  if (!m) return {};
  if (!m->is_string()) fail("model", "'model' must be a string");
  return m->get<std::string>();
}
}  // namespace

namespace {
ApiError bad_json_types(const nlohmann::json::exception& e) {
  return ApiError{400, std::string("invalid request: ") + e.what(), "BadRequestError", ""};
}
}  // namespace

std::variant<TokenizeRequest, ApiError> parse_tokenize_request(const std::string& text) {
  auto parsed = parse_object(text);
  if (auto* e = std::get_if<ApiError>(&parsed)) return *e;
  auto& body = std::get<json>(parsed);
  TokenizeRequest r;
  try {
    r.model = model_field(body);
    if (field(body, "messages")) {
      r.is_chat = true;
      r.chat_context = chat_context(body);
    } else if (auto p = field(body, "prompt"); p && p->is_string()) {
      r.prompt = p->get<std::string>();
    } else {
      fail("prompt", "'prompt' (a string) or 'messages' is required");
    }
    if (field(body, "add_special_tokens")) r.add_special_tokens = get_bool(body, "add_special_tokens", true);
  } catch (const Bad& b) {
    return b.err;
  } catch (const nlohmann::json::exception& e) {  // as parse_generation_request: the client's fault, never a crash
    return bad_json_types(e);
  }
  return r;
}

std::variant<DetokenizeRequest, ApiError> parse_detokenize_request(const std::string& text) {
  auto parsed = parse_object(text);
  if (auto* e = std::get_if<ApiError>(&parsed)) return *e;
  auto& body = std::get<json>(parsed);
  DetokenizeRequest r;
  try {
    r.model = model_field(body);
    auto t = field(body, "tokens");
    if (!t || !t->is_array()) fail("tokens", "'tokens' (a list of token ids) is required");
    r.tokens = token_list(*t, "tokens");
  } catch (const Bad& b) {
    return b.err;
  } catch (const nlohmann::json::exception& e) {
    return bad_json_types(e);
  }
  return r;
}

std::variant<GenerationRequest, ApiError> parse_generation_request(const std::string& body_text, ApiKind kind,
                                                                   const GenerationDefaults& defaults) {
  auto parsed = parse_object(body_text);
  if (auto* e = std::get_if<ApiError>(&parsed)) return *e;
  auto& body = std::get<json>(parsed);
  GenerationRequest r;
  r.kind = kind;
  try {
    r.model = model_field(body);
    if (kind == ApiKind::completion) {
      parse_prompt(body, r);
      r.echo = get_bool(body, "echo", false);
    } else {
      r.chat_context = chat_context(body);
    }
    r.skip_special_tokens = get_bool(body, "skip_special_tokens", true);
    r.stream = get_bool(body, "stream", false);
    if (auto so = field(body, "stream_options")) {
      if (!so->is_object()) fail("stream_options", "'stream_options' must be an object");
      r.include_usage = get_bool(*so, "include_usage", false);
    }
    if (auto u = field(body, "user"); u && u->is_string()) r.user = u->get<std::string>();
    parse_sampling(body, r, defaults);
  } catch (const Bad& b) {
    return b.err;
  } catch (const nlohmann::json::exception& e) {  // a type nlohmann could not convert: still the client's fault
    return bad_json_types(e);
  }
  return r;
}

}  // namespace troupe
