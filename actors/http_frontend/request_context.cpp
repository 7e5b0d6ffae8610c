#include "actors/http_frontend/request_context.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>

namespace troupe {

using nlohmann::json;

RequestContext::RequestContext(GenerationRequest req, std::uint32_t num_prompt_tokens, const TextCodec& codec,
                               http::ResponderPtr out, ResponseIdentity ident,
                               std::optional<ReasoningParser> reasoning)
  : req_(std::move(req)),
    num_prompt_(num_prompt_tokens),
    decoder_(codec.stream(req_.skip_special_tokens)),
    out_(std::move(out)),
    ident_(std::move(ident)) {
  reasoning_ = std::move(reasoning);
  for (auto& s : req_.stop) max_stop_ = std::max(max_stop_, s.size());
  if (req_.echo) text_prefix_ = req_.prompt_is_ids ? codec.decode(req_.prompt_ids) : req_.prompt_text;
}

std::string RequestContext::usage_json() const {
  return json{{"prompt_tokens", num_prompt_},
              {"total_tokens", num_prompt_ + num_generated_},
              {"completion_tokens", num_generated_},
              {"prompt_tokens_details", nullptr}}
    .dump();
}

// Text on its way out: through the reasoning parser when there is one, else all content.
ReasoningDelta RequestContext::split(const std::string& text, bool last) {
  if (!reasoning_) return {"", text};
  auto d = reasoning_->feed(text);
  if (last) {
    auto f = reasoning_->flush();
    d.reasoning += f.reasoning;
    d.content += f.content;
  }
  return d;
}

std::string RequestContext::chunk(const ReasoningDelta& d, const std::string* finish_reason,
                                  const std::string& stop_reason_json) {
  json choice = {{"index", 0}, {"logprobs", nullptr}};
  if (req_.kind == ApiKind::chat) {
    json delta = json::object();
    if (!role_sent_) {
      delta["role"] = "assistant";
      role_sent_ = true;
    }
    if (!d.reasoning.empty()) delta["reasoning_content"] = d.reasoning;
    if (!d.content.empty() || (d.reasoning.empty() && !finish_reason)) delta["content"] = d.content;
    choice["delta"] = delta;
  } else {
    choice["text"] = d.content;
  }
  choice["finish_reason"] = finish_reason ? json(*finish_reason) : json(nullptr);
  choice["stop_reason"] = json::parse(stop_reason_json.empty() ? "null" : stop_reason_json);
  json c = {{"id", ident_.id},
            {"object", req_.kind == ApiKind::chat ? "chat.completion.chunk" : "text_completion"},
            {"created", ident_.created},
            {"model", ident_.model},
            {"choices", json::array({choice})}};
  return "data: " + c.dump() + "\n\n";
}

void RequestContext::start_stream_if_needed() {
  if (!req_.stream || streaming_) return;
  streaming_ = true;
  out_->begin_stream(200, "text/event-stream");
  if (req_.kind == ApiKind::chat) out_->write(chunk({}, nullptr, ""));  // the role chunk, as vLLM sends first
  if (!text_prefix_.empty()) out_->write(chunk({"", text_prefix_}, nullptr, ""));
}

// Looks for a stop string that ends at or after `search_from`; cuts the text there.
bool RequestContext::find_stop(std::size_t search_from) {
  std::size_t best = std::string::npos;
  for (auto& s : req_.stop) {
    std::size_t from = search_from >= s.size() - 1 ? search_from - (s.size() - 1) : 0;
    auto p = text_.find(s, from);
    if (p != std::string::npos && p < best) best = p, stop_hit_ = s;
  }
  if (best == std::string::npos) return false;
  text_.resize(best);
  return true;
}

// Streams what is safe: everything when final, else all but the last max_stop-1 bytes (a stop string
// may still complete there), cut back to a whole UTF-8 character.
void RequestContext::emit(const std::string&, bool final) {
  if (!req_.stream) return;
  std::size_t upto = text_.size();
  if (!final && max_stop_ > 1) upto = text_.size() > max_stop_ - 1 ? text_.size() - (max_stop_ - 1) : 0;
  if (upto <= sent_) return;
  std::string piece = text_.substr(sent_, upto - sent_);
  if (!final) piece.resize(utf8_complete_prefix(piece));
  if (piece.empty()) return;
  sent_ += piece.size();
  auto d = split(piece, false);
  if (d.reasoning.empty() && d.content.empty()) return;  // a tag held back by the parser
  out_->write(chunk(d, nullptr, ""));
}

void RequestContext::finish(const std::string& reason, const std::string& stop_reason_json) {
  ended_ = true;
  if (req_.stream) {
    start_stream_if_needed();
    std::string rest = text_.substr(std::min(sent_, text_.size()));
    out_->write(chunk(split(rest, true), &reason, stop_reason_json));
    if (req_.include_usage) {
      json u = {{"id", ident_.id},
                {"object", req_.kind == ApiKind::chat ? "chat.completion.chunk" : "text_completion"},
                {"created", ident_.created},
                {"model", ident_.model},
                {"choices", json::array()},
                {"usage", json::parse(usage_json())}};
      out_->write("data: " + u.dump() + "\n\n");
    }
    out_->write("data: [DONE]\n\n");
    out_->end();
    return;
  }
  json choice = {{"index", 0}, {"logprobs", nullptr}, {"finish_reason", reason}};
  choice["stop_reason"] = json::parse(stop_reason_json.empty() ? "null" : stop_reason_json);
  json body = {{"id", ident_.id}, {"created", ident_.created}, {"model", ident_.model}};
  if (req_.kind == ApiKind::chat) {
    body["object"] = "chat.completion";
    auto d = split(text_, true);
    bool parsed = reasoning_.has_value();
    choice["message"] = {{"role", "assistant"},
                         {"content", parsed && d.content.empty() ? json(nullptr) : json(d.content)},
                         {"reasoning_content", parsed && !d.reasoning.empty() ? json(d.reasoning) : json(nullptr)},
                         {"tool_calls", json::array()}};
  } else {
    body["object"] = "text_completion";
    choice["text"] = text_prefix_ + text_;
    choice["prompt_logprobs"] = nullptr;
  }
  body["choices"] = json::array({choice});
  body["usage"] = json::parse(usage_json());
  out_->respond(200, "application/json", body.dump());
}

void RequestContext::fail(int status, const std::string& message) {
  if (ended_) return;
  ended_ = true;
  ApiError e{status, message, status == 503 ? "ServiceUnavailableError" : status >= 500 ? "InternalServerError"
                                                                                        : "BadRequestError", ""};
  if (streaming_) {  // headers are gone: the error travels as an event, then the stream closes
    out_->write("data: " + e.json() + "\n\n");
    out_->write("data: [DONE]\n\n");
    out_->end();
  } else {
    out_->respond(status, "application/json", e.json());
  }
}

RequestContext::Outcome RequestContext::on_event(schema::TokenEvent::Reader ev) {
  if (ended_) return {true, false};
  auto reason = ev.getFinishReason();
  if (reason == schema::FinishReason::ERROR) {
    fail(ev.getErrorStatus() ? ev.getErrorStatus() : 500, ev.getMessage().cStr());
    return {true, false};
  }
  if (reason == schema::FinishReason::ABORT) {
    fail(499, std::string("request aborted: ") + ev.getMessage().cStr());
    return {true, false};
  }
  start_stream_if_needed();
  std::size_t before = text_.size();
  std::string added;
  for (auto tok : ev.getTokens()) {
    ++num_generated_;
    added += decoder_->push(tok);
  }
  if (reason != schema::FinishReason::NONE) added += decoder_->flush();
  text_ += added;
  if (max_stop_ > 0 && find_stop(before)) {
    finish("stop", json(stop_hit_).dump());
    return {true, true};
  }
  if (reason == schema::FinishReason::NONE) {
    emit(added, false);
    return {false, false};
  }
  std::string stop_reason = ev.getStopTokenId() >= 0 ? std::to_string(ev.getStopTokenId()) : "";
  finish(reason == schema::FinishReason::LENGTH ? "length" : "stop", stop_reason);
  return {true, false};
}

}  // namespace troupe
