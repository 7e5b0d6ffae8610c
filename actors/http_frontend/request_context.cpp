#include "actors/http_frontend/request_context.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>

namespace troupe {

using nlohmann::json;

RequestContext::RequestContext(GenerationRequest req, std::vector<std::int32_t> prompt_ids, const TextCodec& codec,
                               http::ResponderPtr out, ResponseIdentity ident, std::uint64_t base_id,
                               std::uint32_t n, std::optional<ReasoningParser> reasoning)
  : req_(std::move(req)), prompt_ids_(std::move(prompt_ids)), num_prompt_(std::uint32_t(prompt_ids_.size())),
    fmt_(codec, req_.return_tokens_as_token_ids), out_(std::move(out)), ident_(std::move(ident)), base_id_(base_id) {
  for (auto& s : req_.stop) max_stop_ = std::max(max_stop_, s.size());
  if (req_.echo) text_prefix_ = req_.prompt_is_ids ? codec.decode(req_.prompt_ids) : req_.prompt_text;
  choices_.resize(std::max<std::uint32_t>(n, 1));
  for (std::uint32_t i = 0; i < choices_.size(); ++i) {
    choices_[i].index = i;
    choices_[i].decoder = codec.stream(req_.skip_special_tokens, prompt_ids_);  // primed: vLLM decodes after the prompt
    choices_[i].parser = reasoning;
    choices_[i].echo_lps_pending = req_.echo && req_.logprobs && req_.prompt_logprobs;
  }
}

void RequestContext::keep_prompt_logprobs(schema::TokenEvent::Reader ev) {
  if (!req_.prompt_logprobs || prompt_lps_ || ev.getTokens().size() == 0) return;
  prompt_lps_.emplace();
  for (auto p : ev.getPromptLogprobs()) {
    PromptTokenLogprob e{p.getLogprob(), p.getRank(), {}};
    for (auto t : p.getTop()) e.top.emplace_back(t.getToken(), t.getLogprob());
    prompt_lps_->push_back(std::move(e));
  }
}

json RequestContext::prompt_logprobs_json() const {
  if (!req_.prompt_logprobs) return nullptr;
  return fmt_.prompt_logprobs(prompt_ids_, prompt_lps_.value_or(std::vector<PromptTokenLogprob>{}));
}

// vLLM lists an echoed prompt's tokens ahead of the generated ones, with the prompt logprobs' values.
std::vector<GeneratedToken> RequestContext::prompt_tokens() const {
  std::vector<GeneratedToken> out;
  for (std::size_t i = 0; i < prompt_ids_.size(); ++i) {
    GeneratedToken g{prompt_ids_[i], std::nullopt, {}};
    if (i > 0 && prompt_lps_ && i - 1 < prompt_lps_->size()) {
      g.logprob = (*prompt_lps_)[i - 1].logprob;
      g.top = (*prompt_lps_)[i - 1].top;
    }
    out.push_back(std::move(g));
  }
  return out;
}

json RequestContext::usage() const {
  std::uint32_t gen = 0;
  for (auto& c : choices_) gen += c.generated;
  return {{"prompt_tokens", num_prompt_},
          {"total_tokens", num_prompt_ + gen},
          {"completion_tokens", gen},
          {"prompt_tokens_details", nullptr}};
}

// Text on its way out: through the choice's reasoning parser when there is one, else all content.
ReasoningDelta RequestContext::split(Choice& c, const std::string& text, bool last) {
  if (!c.parser) return {"", text};
  auto d = c.parser->feed(text);
  if (last) {
    auto f = c.parser->flush();
    d.reasoning += f.reasoning;
    d.content += f.content;
  }
  return d;
}

std::string RequestContext::chunk_envelope(json choices, json prompt_ids) const {
  json c = {{"id", ident_.id},
            {"object", req_.kind == ApiKind::chat ? "chat.completion.chunk" : "text_completion"},
            {"created", ident_.created},
            {"model", ident_.model},
            {"choices", std::move(choices)}};
  if (!prompt_ids.is_null()) c["prompt_token_ids"] = std::move(prompt_ids);
  return "data: " + c.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n";
}

// Tokens [from, to) of the choice: their logprobs (when asked) and, with return_token_ids, their ids (vLLM
// puts a completion's prompt_token_ids on the choice, a chat's on the response). offset: characters ahead
// of the first token in the choice's text (completions' text_offset). With echo and logprobs, the choice's first
// call lists the prompt's tokens first (their values from prompt_logprobs, as vLLM does).
void RequestContext::add_token_fields(json& choice, Choice& c, std::size_t from, std::size_t to, std::size_t offset) {
  std::vector<GeneratedToken> toks(c.toks.begin() + std::ptrdiff_t(from), c.toks.begin() + std::ptrdiff_t(to));
  std::int32_t prev = from > 0 ? c.toks[from - 1].id : prompt_ids_.empty() ? -1 : prompt_ids_.back();
  if (c.echo_lps_pending) {  // the choice's first logprobs: the echoed prompt's tokens lead, from offset 0
    c.echo_lps_pending = false;
    auto p = prompt_tokens();
    toks.insert(toks.begin(), p.begin(), p.end());
    prev = -1;
    offset = 0;
  }
  if (req_.logprobs && (!toks.empty() || !req_.stream)) {
    choice["logprobs"] = req_.kind == ApiKind::chat ? fmt_.chat(toks, *req_.logprobs, prev)
                                                    : fmt_.completion(toks, *req_.logprobs, prev, offset);
    // Offsets run on over the token strings, so a stream's offsets equal the whole response's.
    if (auto& lp = choice["logprobs"]; req_.kind == ApiKind::completion && !toks.empty())
      c.chars_sent = lp["text_offset"].back().get<std::size_t>() + utf8_length(lp["tokens"].back().get<std::string>());
  }
  if (!req_.return_token_ids) return;
  json ids = json::array();
  for (std::size_t i = from; i < to; ++i) ids.push_back(c.toks[i].id);
  choice["token_ids"] = std::move(ids);
  if (req_.kind == ApiKind::completion && !c.prompt_ids_sent) {
    choice["prompt_token_ids"] = prompt_ids_;
    c.prompt_ids_sent = req_.stream;  // streaming: only the choice's first chunk carries them
  }
}

std::string RequestContext::chunk(Choice& c, const ReasoningDelta& d, bool role, bool final, std::size_t tok_upto) {
  json choice = {{"index", c.index}, {"logprobs", nullptr}};
  if (req_.kind == ApiKind::chat) {
    json delta = json::object();
    if (role) delta["role"] = "assistant";
    if (!d.reasoning.empty()) delta["reasoning_content"] = d.reasoning;
    if (!d.content.empty() || (d.reasoning.empty() && !final)) delta["content"] = d.content;
    choice["delta"] = delta;
  } else {
    choice["text"] = d.content;
  }
  choice["finish_reason"] = final ? json(c.finish_reason) : json(nullptr);
  choice["stop_reason"] = final ? json::parse(c.stop_reason_json) : json(nullptr);
  tok_upto = std::max(tok_upto, c.toks_sent);
  if (!role) add_token_fields(choice, c, c.toks_sent, tok_upto, c.chars_sent);
  c.toks_sent = tok_upto;
  json prompt_ids = nullptr;
  if (req_.kind == ApiKind::chat && req_.return_token_ids && !prompt_ids_sent_) {
    prompt_ids = prompt_ids_;
    prompt_ids_sent_ = true;
  }
  return chunk_envelope(json::array({choice}), std::move(prompt_ids));
}

void RequestContext::start_stream_if_needed() {
  if (!req_.stream || streaming_) return;
  streaming_ = true;
  out_->begin_stream(200, "text/event-stream");
}

// A choice's first chunk: the role (chat, as vLLM sends first) or the echoed prompt (completions).
void RequestContext::start_choice(Choice& c) {
  if (!req_.stream || c.started) return;
  start_stream_if_needed();
  c.started = true;
  if (req_.kind == ApiKind::chat) out_->write(chunk(c, {}, true, false, c.toks_sent));
  c.chars_sent = utf8_length(text_prefix_);  // with echoed logprobs, the echo chunk moves it past the prompt's tokens
  if (!text_prefix_.empty()) out_->write(chunk(c, {"", text_prefix_}, false, false, c.toks_sent));
}

// Looks for a stop string that ends at or after `search_from`; cuts the text there.
bool RequestContext::find_stop(Choice& c, std::size_t search_from) {
  std::size_t best = std::string::npos;
  std::string hit;
  for (auto& s : req_.stop) {
    std::size_t from = search_from >= s.size() - 1 ? search_from - (s.size() - 1) : 0;
    auto p = c.text.find(s, from);
    if (p != std::string::npos && p < best) best = p, hit = s;
  }
  if (best == std::string::npos) return false;
  c.text.resize(best);
  c.stop_end = best + hit.size();
  c.stop_reason_json = json(hit).dump(-1, ' ', false, json::error_handler_t::replace);
  return true;
}

// Streams what is safe: all but the last max_stop-1 bytes (a stop string may still complete there),
// cut back to a whole UTF-8 character.
void RequestContext::emit(Choice& c) {
  if (!req_.stream) return;
  std::size_t upto = c.text.size();
  if (max_stop_ > 1) upto = c.text.size() > max_stop_ - 1 ? c.text.size() - (max_stop_ - 1) : 0;
  if (upto <= c.sent) return;
  std::string piece = c.text.substr(c.sent, upto - c.sent);
  piece.resize(utf8_complete_prefix(piece));
  if (piece.empty()) return;
  c.sent += piece.size();
  auto d = split(c, piece, false);
  if (d.reasoning.empty() && d.content.empty()) return;  // a tag held back by the parser
  // The chunk carries the tokens whose text it completes; a token still partly held back waits.
  std::size_t upto_tok = c.toks_sent;
  while (upto_tok < c.toks.size() && c.tok_end[upto_tok] <= c.sent) ++upto_tok;
  out_->write(chunk(c, d, false, false, upto_tok));
}

void RequestContext::finish_choice(Choice& c, const std::string& reason, const std::string& stop_reason_json) {
  c.finished = true;
  c.finish_reason = reason;
  if (c.stop_reason_json.empty()) c.stop_reason_json = stop_reason_json.empty() ? "null" : stop_reason_json;
  ++num_finished_;
  if (req_.stream) {
    start_choice(c);
    std::string rest = c.text.substr(std::min(c.sent, c.text.size()));
    c.sent = c.text.size();
    out_->write(chunk(c, split(c, rest, true), false, true, c.toks.size()));
  }
  if (num_finished_ == choices_.size()) finish_response();
}

void RequestContext::finish_response() {
  ended_ = true;
  if (req_.stream) {
    if (req_.include_usage) {
      std::string u = chunk_envelope(json::array());
      u.insert(u.size() - 3, ",\"usage\":" + usage().dump());  // before the closing brace and "\n\n"
      out_->write(u);
    }
    out_->write("data: [DONE]\n\n");
    out_->end();
    return;
  }
  json list = json::array();
  for (auto& c : choices_) {
    json choice = {{"index", c.index}, {"logprobs", nullptr}, {"finish_reason", c.finish_reason},
                   {"stop_reason", json::parse(c.stop_reason_json)}};
    if (req_.kind == ApiKind::chat) {
      auto d = split(c, c.text, true);
      bool parsed = c.parser.has_value();
      choice["message"] = {{"role", "assistant"},
                           {"content", parsed && d.content.empty() ? json(nullptr) : json(d.content)},
                           {"reasoning_content", parsed && !d.reasoning.empty() ? json(d.reasoning) : json(nullptr)},
                           {"tool_calls", json::array()}};
    } else {
      choice["text"] = text_prefix_ + c.text;
      choice["prompt_logprobs"] = prompt_logprobs_json();
    }
    add_token_fields(choice, c, 0, c.toks.size(), utf8_length(text_prefix_));
    list.push_back(std::move(choice));
  }
  json body = {{"id", ident_.id}, {"created", ident_.created}, {"model", ident_.model},
               {"object", req_.kind == ApiKind::chat ? "chat.completion" : "text_completion"},
               {"choices", std::move(list)}, {"usage", usage()}};
  if (req_.kind == ApiKind::chat) body["prompt_logprobs"] = prompt_logprobs_json();  // vLLM: on the response
  if (req_.kind == ApiKind::chat && req_.return_token_ids) body["prompt_token_ids"] = prompt_ids_;
  out_->respond(200, "application/json", body.dump(-1, ' ', false, json::error_handler_t::replace));
}

void RequestContext::fail(int status, const std::string& message) {
  if (ended_) return;
  ended_ = true;
  ApiError e{status, message,
             status == 503 ? "ServiceUnavailableError" : status >= 500 ? "InternalServerError" : "BadRequestError", ""};
  if (streaming_) {  // headers are gone: the error travels as an event, then the stream closes
    out_->write("data: " + e.json() + "\n\n");
    out_->write("data: [DONE]\n\n");
    out_->end();
  } else {
    out_->respond(status, "application/json", e.json());
  }
}

// vLLM keeps the tokens through the one that completes the stop string; any generated after it (in the
// same event) are dropped, so token lists and logprobs stay aligned with the text.
void RequestContext::drop_tokens_after_stop(Choice& c) {
  std::size_t keep = 0;
  while (keep < c.toks.size() && (keep == 0 ? 0 : c.tok_end[keep - 1]) < c.stop_end) ++keep;
  keep = std::max(keep, c.toks_sent);
  c.toks.resize(keep);
  c.tok_end.resize(keep);
}

std::vector<std::uint64_t> RequestContext::other_live_ids(std::uint32_t except) const {
  std::vector<std::uint64_t> ids;
  for (auto& c : choices_)
    if (!c.finished && c.index != except) ids.push_back(base_id_ + c.index);
  return ids;
}

RequestContext::Outcome RequestContext::on_event(schema::TokenEvent::Reader ev) {
  if (ended_) return {true, {}};
  std::uint64_t k = ev.getRequestId() - base_id_;
  if (k >= choices_.size() || choices_[k].finished) return {false, {}};
  Choice& c = choices_[k];
  auto reason = ev.getFinishReason();
  if (reason == schema::FinishReason::ERROR || reason == schema::FinishReason::ABORT) {
    // One failed choice fails the response; its siblings stop too.
    c.finished = true;
    auto others = other_live_ids(c.index);
    if (reason == schema::FinishReason::ERROR)
      fail(ev.getErrorStatus() ? ev.getErrorStatus() : 500, ev.getMessage().cStr());
    else
      fail(499, std::string("request aborted: ") + ev.getMessage().cStr());
    return {true, others};
  }
  keep_prompt_logprobs(ev);
  start_choice(c);
  std::size_t before = c.text.size();
  auto lps = ev.getLogprobs();
  unsigned j = 0;
  for (auto tok : ev.getTokens()) {
    ++c.generated;
    c.text += c.decoder->push(tok);
    GeneratedToken g{tok, std::nullopt, {}};
    if (j < lps.size()) {
      g.logprob = lps[j].getLogprob();
      for (auto t : lps[j].getTop()) g.top.emplace_back(t.getToken(), t.getLogprob());
    }
    ++j;
    c.toks.push_back(std::move(g));
    c.tok_end.push_back(c.text.size());
  }
  if (reason != schema::FinishReason::NONE) {
    c.text += c.decoder->flush();
    if (!c.tok_end.empty()) c.tok_end.back() = c.text.size();
  }
  if (max_stop_ > 0 && find_stop(c, before)) {
    drop_tokens_after_stop(c);
    finish_choice(c, "stop", "");
    return {ended_, {base_id_ + c.index}};
  }
  if (reason == schema::FinishReason::NONE) {
    emit(c);
    return {false, {}};
  }
  std::string stop_reason = ev.getStopTokenId() >= 0 ? std::to_string(ev.getStopTokenId()) : "";
  finish_choice(c, reason == schema::FinishReason::LENGTH ? "length" : "stop", stop_reason);
  return {ended_, {}};
}

}  // namespace troupe
