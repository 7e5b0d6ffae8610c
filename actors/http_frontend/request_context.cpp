#include "actors/http_frontend/request_context.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>

namespace troupe {

using nlohmann::json;

RequestContext::RequestContext(GenerationRequest req, std::uint32_t num_prompt_tokens, const TextCodec& codec,
                               http::ResponderPtr out, ResponseIdentity ident, std::uint64_t base_id,
                               std::uint32_t n, std::optional<ReasoningParser> reasoning)
  : req_(std::move(req)), num_prompt_(num_prompt_tokens), out_(std::move(out)), ident_(std::move(ident)),
    base_id_(base_id) {
  for (auto& s : req_.stop) max_stop_ = std::max(max_stop_, s.size());
  if (req_.echo) text_prefix_ = req_.prompt_is_ids ? codec.decode(req_.prompt_ids) : req_.prompt_text;
  choices_.resize(std::max<std::uint32_t>(n, 1));
  for (std::uint32_t i = 0; i < choices_.size(); ++i) {
    choices_[i].index = i;
    choices_[i].decoder = codec.stream(req_.skip_special_tokens);
    choices_[i].parser = reasoning;
  }
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

std::string RequestContext::chunk_envelope(json choices) const {
  json c = {{"id", ident_.id},
            {"object", req_.kind == ApiKind::chat ? "chat.completion.chunk" : "text_completion"},
            {"created", ident_.created},
            {"model", ident_.model},
            {"choices", std::move(choices)}};
  return "data: " + c.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n";
}

std::string RequestContext::chunk(const Choice& c, const ReasoningDelta& d, bool role, bool final) {
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
  return chunk_envelope(json::array({choice}));
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
  if (req_.kind == ApiKind::chat) out_->write(chunk(c, {}, true, false));
  if (!text_prefix_.empty()) out_->write(chunk(c, {"", text_prefix_}, false, false));
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
  out_->write(chunk(c, d, false, false));
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
    out_->write(chunk(c, split(c, rest, true), false, true));
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
      choice["prompt_logprobs"] = nullptr;
    }
    list.push_back(std::move(choice));
  }
  json body = {{"id", ident_.id}, {"created", ident_.created}, {"model", ident_.model},
               {"object", req_.kind == ApiKind::chat ? "chat.completion" : "text_completion"},
               {"choices", std::move(list)}, {"usage", usage()}};
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
  start_choice(c);
  std::size_t before = c.text.size();
  for (auto tok : ev.getTokens()) {
    ++c.generated;
    c.text += c.decoder->push(tok);
  }
  if (reason != schema::FinishReason::NONE) c.text += c.decoder->flush();
  if (max_stop_ > 0 && find_stop(c, before)) {
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
