#include "actors/http_frontend/frontend_shared.hpp"
#include "actors/http_frontend/metrics.hpp"

#include <caf/send.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <random>

namespace troupe {

void send_abort(FrontendShared& sh, std::uint64_t id, const char* why) {
  caf::anon_send(sh.scheduler, AbortMsg::make([&](schema::AbortRequest::Builder b) {
                   b.setRequestId(id);
                   b.setReason(why);
                 }));
}

namespace {

using nlohmann::json;

constexpr const char* kVersion = "0.1.0";

void send_error(const http::ResponderPtr& out, const ApiError& e) { out->respond(e.status, "application/json", e.json()); }

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string random_hex() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(rng()));
  return buf;
}

void handle_models(FrontendShared& sh, const http::ResponderPtr& out) {
  json card = {{"id", sh.opts.served_model_name},
               {"object", "model"},
               {"created", unix_now()},
               {"owned_by", "troupe"},
               {"root", sh.opts.model_root.empty() ? sh.opts.served_model_name : sh.opts.model_root},
               {"parent", nullptr},
               {"max_model_len", sh.opts.max_model_len}};
  out->respond(200, "application/json", json{{"object", "list"}, {"data", json::array({card})}}.dump());
}

void handle_health(FrontendShared& sh, const http::ResponderPtr& out) {
  if (sh.healthy.load()) return out->respond(200, "application/json", "");
  std::string why;
  {
    std::lock_guard lk(sh.mu);
    why = sh.health_message;
  }
  send_error(out, {503, "the service is unhealthy: " + why, "ServiceUnavailableError", ""});
}

bool model_ok(FrontendShared& sh, const std::string& model, const http::ResponderPtr& out) {
  if (model.empty() || model == sh.opts.served_model_name) return true;
  send_error(out, {404, "The model `" + model + "` does not exist.", "NotFoundError", "model"});
  return false;
}

SubmitMsg make_submit(std::uint64_t id, const GenerationRequest& r, const std::vector<std::int32_t>& prompt,
                      std::uint32_t max_tokens, std::int32_t eos) {
  return SubmitMsg::make([&](schema::SubmitRequest::Builder b) {
    b.setRequestId(id);
    auto toks = b.initPromptTokens(static_cast<unsigned>(prompt.size()));
    for (unsigned i = 0; i < prompt.size(); ++i) toks.set(i, prompt[i]);
    b.setArrivalNs(std::chrono::steady_clock::now().time_since_epoch().count());
    b.setEosTokenId(eos);
    auto s = b.initSampling();
    s.setTemperature(r.temperature);
    s.setTopP(r.top_p);
    s.setTopK(r.top_k);
    s.setMinP(r.min_p);
    s.setHasSeed(r.seed.has_value());
    s.setSeed(r.seed.value_or(0));
    s.setMaxTokens(max_tokens);
    s.setMinTokens(r.min_tokens);
    s.setIgnoreEos(r.ignore_eos);
    auto st = s.initStopTokenIds(static_cast<unsigned>(r.stop_token_ids.size()));
    for (unsigned i = 0; i < r.stop_token_ids.size(); ++i) st.set(i, r.stop_token_ids[i]);
    s.setPresencePenalty(r.presence_penalty);
    s.setFrequencyPenalty(r.frequency_penalty);
    s.setRepetitionPenalty(r.repetition_penalty);
    s.setLogprobs(r.logprobs.value_or(-1));
    s.setPromptLogprobs(r.prompt_logprobs.value_or(-1));
  });
}

// skip-tokenizer-init: only token-id prompts can be served; text would need the tokenizer (as vLLM).
std::optional<ApiError> refuse_text_without_tokenizer(const GenerationRequest& r) {
  const char* why = " (the server runs with skip-tokenizer-init: no tokenizer is loaded)";
  if (r.kind == ApiKind::chat)
    return ApiError{400, std::string("chat completions need a tokenizer; send token ids to /v1/completions") + why,
                    "BadRequestError", "messages"};
  if (!r.prompt_is_ids)
    return ApiError{400, std::string("'prompt' must be a list of token ids") + why, "BadRequestError", "prompt"};
  if (!r.stop.empty())
    return ApiError{400, std::string("stop strings need a tokenizer; use 'stop_token_ids'") + why, "BadRequestError", "stop"};
  return std::nullopt;
}

// No max_tokens in the request: chat may use the rest of the context, completions 16 (the OpenAI
// default); the model's generation_config max_new_tokens lowers either, as vLLM's get_max_tokens does.
std::uint32_t default_max_tokens(const FrontendShared& sh, ApiKind kind, std::uint32_t rest) {
  std::uint32_t n = kind == ApiKind::chat ? rest : 16;
  if (auto m = sh.opts.generation.max_new_tokens) n = std::min(n, *m);
  return n;
}

void handle_generation(const std::shared_ptr<FrontendShared>& shp, const http::Request& hr,
                       const http::ResponderPtr& out, ApiKind kind) {
  auto& sh = *shp;
  auto parsed = parse_generation_request(hr.body, kind, sh.opts.generation);
  if (auto* e = std::get_if<ApiError>(&parsed)) return send_error(out, *e);
  auto& req = std::get<GenerationRequest>(parsed);
  if (!model_ok(sh, req.model, out)) return;
  if (!sh.codec->has_tokenizer()) {
    if (auto e = refuse_text_without_tokenizer(req)) return send_error(out, *e);
    req.return_token_ids = true;            // with no text, the ids are the reply (vLLM: return_token_ids)
    req.return_tokens_as_token_ids = true;  // logprob tokens as "token_id:N": there are no strings to show
  }
  if (!sh.accepting.load())
    return send_error(out, {503, "the server is shutting down", "ServiceUnavailableError", ""});
  if (!sh.healthy.load())
    return send_error(out, {503, "the service is unhealthy", "ServiceUnavailableError", ""});

  std::vector<std::int32_t> prompt;
  std::optional<ReasoningParser> reasoning;
  try {
    if (kind == ApiKind::chat) {
      std::string rendered = sh.codec->render_chat(req.chat_context);
      if (sh.opts.reasoning_parser == "deepseek_r1")
        reasoning.emplace(ReasoningParser::prompt_opens_reasoning(rendered));
      prompt = sh.codec->encode(rendered, !sh.codec->chat_has_special_tokens());
    } else
      prompt = req.prompt_is_ids ? req.prompt_ids : sh.codec->encode(req.prompt_text, true);
  } catch (const ChatRenderError& e) {
    return send_error(out, {400, e.what(), "BadRequestError", "messages"});
  }
  for (auto t : prompt)
    if (t >= sh.codec->vocab_size())
      return send_error(out, {400, "token id " + std::to_string(t) + " is out of the vocabulary (size " +
                                     std::to_string(sh.codec->vocab_size()) + ")", "BadRequestError", "prompt"});
  std::uint32_t max_len = sh.opts.max_model_len;
  if (prompt.size() >= max_len)
    return send_error(out, {400, "This model's maximum context length is " + std::to_string(max_len) +
                                   " tokens. However, your prompt has " + std::to_string(prompt.size()) + " tokens.",
                            "BadRequestError", kind == ApiKind::chat ? "messages" : "prompt"});
  std::uint32_t max_tokens = req.max_tokens ? *req.max_tokens : default_max_tokens(sh, kind, max_len - std::uint32_t(prompt.size()));
  if (prompt.size() + std::uint64_t(max_tokens) > max_len)
    return send_error(out, {400, "This model's maximum context length is " + std::to_string(max_len) +
                                   " tokens. However, you requested " + std::to_string(prompt.size() + max_tokens) +
                                   " tokens (" + std::to_string(prompt.size()) + " in the prompt, " +
                                   std::to_string(max_tokens) + " for the completion).",
                            "BadRequestError", "max_tokens"});

  // n choices are n engine requests with consecutive ids, all routed to one context.
  std::uint32_t n = req.n;
  std::uint64_t base = sh.next_id.fetch_add(n);
  ResponseIdentity ident{(kind == ApiKind::chat ? "chatcmpl-" : "cmpl-") + random_hex(), sh.opts.served_model_name,
                         unix_now()};
  std::vector<SubmitMsg> submits;
  for (std::uint32_t i = 0; i < n; ++i) {
    GenerationRequest child = req;
    if (child.seed && i > 0) *child.seed += i;
    submits.push_back(make_submit(base + i, child, prompt, max_tokens, sh.codec->eos_id()));
  }
  auto ctx = std::make_shared<RequestContext>(std::move(req), prompt, *sh.codec, out, ident,
                                              base, n, std::move(reasoning));
  {
    std::lock_guard lk(sh.mu);
    for (std::uint32_t i = 0; i < n; ++i) sh.live.emplace(base + i, FrontendShared::Live{ctx, out});
  }
  // A client that goes away aborts its requests, which frees their KV blocks.
  std::weak_ptr<FrontendShared> weak = shp;
  out->on_disconnect([weak, base, n] {
    if (auto s = weak.lock())
      for (std::uint32_t i = 0; i < n; ++i) send_abort(*s, base + i, "client disconnected");
  });
  for (auto& m : submits) caf::anon_send(sh.scheduler, std::move(m), sh.sink);
}

void handle_tokenize(FrontendShared& sh, const http::Request& hr, const http::ResponderPtr& out) {
  auto parsed = parse_tokenize_request(hr.body);
  if (auto* e = std::get_if<ApiError>(&parsed)) return send_error(out, *e);
  auto& req = std::get<TokenizeRequest>(parsed);
  if (!model_ok(sh, req.model, out)) return;
  if (!sh.codec->has_tokenizer())
    return send_error(out, {400, "/tokenize needs a tokenizer (the server runs with skip-tokenizer-init)", "BadRequestError", ""});
  std::vector<std::int32_t> ids;
  try {
    std::string text = req.is_chat ? sh.codec->render_chat(req.chat_context) : req.prompt;
    ids = sh.codec->encode(text, req.add_special_tokens.value_or(!req.is_chat));
  } catch (const ChatRenderError& e) {
    return send_error(out, {400, e.what(), "BadRequestError", "messages"});
  }
  json body = {{"count", ids.size()}, {"max_model_len", sh.opts.max_model_len}, {"tokens", ids}, {"token_strs", nullptr}};
  out->respond(200, "application/json", body.dump());
}

void handle_detokenize(FrontendShared& sh, const http::Request& hr, const http::ResponderPtr& out) {
  auto parsed = parse_detokenize_request(hr.body);
  if (auto* e = std::get_if<ApiError>(&parsed)) return send_error(out, *e);
  auto& req = std::get<DetokenizeRequest>(parsed);
  if (!model_ok(sh, req.model, out)) return;
  if (!sh.codec->has_tokenizer())
    return send_error(out, {400, "/detokenize needs a tokenizer (the server runs with skip-tokenizer-init)", "BadRequestError", ""});
  for (auto t : req.tokens)
    if (t >= sh.codec->vocab_size())
      return send_error(out, {400, "token id " + std::to_string(t) + " is out of the vocabulary", "BadRequestError", "tokens"});
  out->respond(200, "application/json", json{{"prompt", sh.codec->decode(req.tokens, false)}}.dump(-1, ' ', false, json::error_handler_t::replace));
}

}  // namespace

void handle_http(const std::shared_ptr<FrontendShared>& shared, http::Request req, http::ResponderPtr out) {
  auto& sh = *shared;
  const std::string& p = req.path;
  bool get = req.method == "GET", post = req.method == "POST";
  auto only = [&](bool ok) {
    if (!ok) send_error(out, {405, "method " + req.method + " is not allowed on " + p, "MethodNotAllowed", ""});
    return ok;
  };
  if (p == "/health") {
    if (only(get)) handle_health(sh, out);
  } else if (p == "/ping") {
    if (only(get || post)) handle_health(sh, out);
  } else if (p == "/metrics") {
    if (only(get)) handle_metrics(shared, out);
  } else if (p == "/version") {
    if (only(get)) out->respond(200, "application/json", json{{"version", kVersion}}.dump());
  } else if (p == "/v1/models") {
    if (only(get)) handle_models(sh, out);
  } else if (p == "/v1/completions") {
    if (only(post)) handle_generation(shared, req, out, ApiKind::completion);
  } else if (p == "/v1/chat/completions") {
    if (only(post)) handle_generation(shared, req, out, ApiKind::chat);
  } else if (p == "/tokenize") {
    if (only(post)) handle_tokenize(sh, req, out);
  } else if (p == "/detokenize") {
    if (only(post)) handle_detokenize(sh, req, out);
  } else {
    send_error(out, {404, "no route " + req.method + " " + p, "NotFoundError", ""});
  }
}

}  // namespace troupe
