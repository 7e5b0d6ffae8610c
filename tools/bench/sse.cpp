#include "tools/bench/sse.hpp"

#include <nlohmann/json.hpp>

namespace troupe::bench {

using nlohmann::json;

void SseParser::feed(std::string_view bytes, const Sink& on_event) {
  while (!bytes.empty()) {
    auto nl = bytes.find('\n');
    if (nl == std::string_view::npos) {
      line_.append(bytes);
      return;
    }
    line_.append(bytes.substr(0, nl));
    bytes.remove_prefix(nl + 1);
    end_line(on_event);
  }
}

void SseParser::end_line(const Sink& on_event) {
  if (!line_.empty() && line_.back() == '\r') line_.pop_back();
  if (line_.empty()) {  // blank line: the event is complete
    if (has_data_) on_event(std::move(data_));
    data_.clear();
    has_data_ = false;
    return;
  }
  if (line_.rfind("data:", 0) == 0) {
    std::string_view v(line_);
    v.remove_prefix(5);
    if (!v.empty() && v.front() == ' ') v.remove_prefix(1);
    if (has_data_) data_ += '\n';
    data_.append(v);
    has_data_ = true;
  }
  line_.clear();
}

void SseParser::finish(const Sink& on_event) {
  if (!line_.empty()) end_line(on_event);
  if (has_data_) on_event(std::move(data_));
  data_.clear();
  has_data_ = false;
}

namespace {

std::string str_or_empty(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
}

void read_choice(const json& c, bool chat, StreamChunk& out) {
  if (!chat) {
    out.is_token = true;  // vLLM: every completion chunk with choices is a token chunk, even empty text
    out.text = str_or_empty(c, "text");
    return;
  }
  auto d = c.find("delta");
  if (d == c.end() || !d->is_object()) return;
  out.text = str_or_empty(*d, "content");
  out.reasoning = str_or_empty(*d, "reasoning_content");
  if (out.reasoning.empty()) out.reasoning = str_or_empty(*d, "reasoning");
  bool tools = d->contains("tool_calls") && !(*d)["tool_calls"].is_null();
  bool content_key = d->contains("content") && (*d)["content"].is_string();
  // A token may decode to "": such chunks carry content and no role; the opening chunk carries the role.
  out.is_token = !out.text.empty() || !out.reasoning.empty() || tools ||
                 (content_key && out.text.empty() && !d->contains("role"));
}

}  // namespace

StreamChunk parse_stream_chunk(std::string_view data, bool chat) {
  StreamChunk out;
  if (data == "[DONE]") {
    out.done = true;
    return out;
  }
  json j = json::parse(data, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    out.error = "unparseable stream chunk: " + std::string(data.substr(0, 200));
    return out;
  }
  if (auto e = j.find("error"); e != j.end() && !e->is_null()) {
    out.error = e->is_object() ? str_or_empty(*e, "message") : e->dump();
    if (out.error.empty()) out.error = e->dump();
    return out;
  }
  if (auto c = j.find("choices"); c != j.end() && c->is_array() && !c->empty()) {
    read_choice((*c)[0], chat, out);
  } else if (auto u = j.find("usage"); u != j.end() && u->is_object()) {
    out.has_usage = true;
    if (auto p = u->find("prompt_tokens"); p != u->end() && p->is_number_integer()) out.prompt_tokens = p->get<int>();
    if (auto p = u->find("completion_tokens"); p != u->end() && p->is_number_integer())
      out.completion_tokens = p->get<int>();
  }
  return out;
}

double to_seconds(Clock::time_point t) { return std::chrono::duration<double>(t.time_since_epoch()).count(); }

ResponseRecorder::ResponseRecorder(bool chat, Clock::time_point start, int prompt_len)
  : chat_(chat), start_(start), last_(start) {
  out_.prompt_len = prompt_len;
  out_.start_time = to_seconds(start);
}

void ResponseRecorder::on_bytes(std::string_view bytes, Clock::time_point at) {
  sse_.feed(bytes, [&](std::string&& data) { on_event(std::move(data), at); });
}

void ResponseRecorder::on_event(std::string&& data, Clock::time_point at) {
  StreamChunk c = parse_stream_chunk(data, chat_);
  if (!c.error.empty()) {
    if (stream_error_.empty()) stream_error_ = c.error;
    return;
  }
  if (c.is_token) {
    double t = std::chrono::duration<double>(at - start_).count();
    if (token_chunks_ == 0) out_.ttft = t;
    else out_.itl.push_back(std::chrono::duration<double>(at - last_).count());
    last_ = at;
    ++token_chunks_;
    out_.generated_text += c.text;
  } else if (c.has_usage) {
    usage_seen_ = c.completion_tokens >= 0;
    if (usage_seen_) out_.output_tokens = c.completion_tokens;
    if (c.prompt_tokens >= 0) out_.prompt_len = c.prompt_tokens;
  }
}

void ResponseRecorder::finish(int status, const std::string& body, const std::string& error) {
  sse_.finish([&](std::string&& data) { on_event(std::move(data), last_); });
  if (!error.empty() && (status == 0 || token_chunks_ == 0)) {
    out_.error = error;
  } else if (status != 200) {
    out_.error = error_message(status, body);
  } else if (!stream_error_.empty()) {
    out_.error = stream_error_;
  } else if (token_chunks_ == 0) {
    out_.error = "Never received a valid chunk to calculate TTFT.";
  } else if (!error.empty()) {
    out_.error = error;  // the stream broke after some tokens
  } else {
    out_.success = true;
  }
  // Without usage, one chunk is one token (the server sends one token per chunk unless it batches).
  if (!usage_seen_) out_.output_tokens = token_chunks_;
  out_.latency = std::chrono::duration<double>(last_ - start_).count();
}

std::string error_message(int status, const std::string& body) {
  std::string msg;
  json j = json::parse(body, nullptr, false);
  if (j.is_object()) {
    if (auto e = j.find("error"); e != j.end() && e->is_object()) msg = str_or_empty(*e, "message");
    if (msg.empty()) msg = str_or_empty(j, "message");
  }
  if (msg.empty()) msg = body.empty() ? "no body" : body.substr(0, 500);
  return "HTTP " + std::to_string(status) + ": " + msg;
}

}  // namespace troupe::bench
