#pragma once
// Incremental Server-Sent-Events parsing and the OpenAI streaming-chunk interpretation that the
// benchmark and `troupe chat` share. Bytes arrive split at arbitrary boundaries (TCP segments, HTTP
// chunks); nothing here assumes an event arrives whole.
#include "tools/bench/metrics.hpp"

#include <chrono>
#include <functional>
#include <string>
#include <string_view>

namespace troupe::bench {

using Clock = std::chrono::steady_clock;

// Splits a byte stream into events: lines end at "\n" (a "\r" before it is dropped), an empty line ends
// an event, `data:` lines are joined with "\n", comment lines (":...") and other fields are ignored.
class SseParser {
 public:
  using Sink = std::function<void(std::string&& data)>;
  void feed(std::string_view bytes, const Sink& on_event);
  // End of stream: an event whose blank line never came is still delivered.
  void finish(const Sink& on_event);

 private:
  void end_line(const Sink& on_event);
  std::string line_, data_;
  bool has_data_ = false;
};

// What one `data:` payload of /v1/completions or /v1/chat/completions says.
struct StreamChunk {
  bool done = false;       // "[DONE]"
  bool is_token = false;   // carries generated output (vLLM's rule: the role-only opening chunk does not)
  std::string text;        // completion text or chat delta.content
  std::string reasoning;   // chat delta.reasoning_content (or delta.reasoning)
  bool has_usage = false;
  int prompt_tokens = -1, completion_tokens = -1;
  std::string error;       // an {"error": {...}} event: the server failed the request mid-stream
};
// Never throws: unparseable JSON becomes an error chunk.
StreamChunk parse_stream_chunk(std::string_view data, bool chat);

// Turns one streamed response into a RequestOutput with vLLM's definitions: TTFT at the first token
// chunk, one ITL per later token chunk, latency at the last token chunk (not at [DONE] or usage).
class ResponseRecorder {
 public:
  ResponseRecorder(bool chat, Clock::time_point start, int prompt_len);
  void on_bytes(std::string_view bytes, Clock::time_point at);
  // status: the HTTP status (0: no response); body: a non-200 response's body; error: transport failure.
  void finish(int status, const std::string& body, const std::string& error);
  RequestOutput& output() { return out_; }
  int token_chunks() const { return token_chunks_; }

 private:
  void on_event(std::string&& data, Clock::time_point at);
  bool chat_;
  Clock::time_point start_, last_;
  SseParser sse_;
  RequestOutput out_;
  int token_chunks_ = 0;
  bool usage_seen_ = false;
  std::string stream_error_;
};

// The message of an OpenAI error body ({"error": {"message": ...}} or {"message": ...}), else the body.
std::string error_message(int status, const std::string& body);

double to_seconds(Clock::time_point t);  // steady-clock seconds since its epoch
}  // namespace troupe::bench
