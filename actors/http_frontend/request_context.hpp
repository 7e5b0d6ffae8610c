#pragma once
// One HTTP generation request between submit and its last byte: turns the scheduler's token events into
// text (incremental detokenization, stop strings that never leak, even across chunks) and into the
// OpenAI response shapes, whole or as SSE chunks. Touched only by the frontend actor after submit.
#include "actors/http_frontend/http_server.hpp"
#include "actors/http_frontend/openai_request.hpp"
#include "actors/http_frontend/reasoning_parser.hpp"
#include "model/codec/text_codec.hpp"
#include "runtime/schema/messages.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace troupe {

struct ResponseIdentity {
  std::string id;          // "cmpl-..." / "chatcmpl-..."
  std::string model;       // served model name
  std::int64_t created = 0;
};

class RequestContext {
 public:
  // reasoning: set for chat requests served with a reasoning parser (deepseek_r1).
  RequestContext(GenerationRequest req, std::uint32_t num_prompt_tokens, const TextCodec& codec,
                 http::ResponderPtr out, ResponseIdentity ident, std::optional<ReasoningParser> reasoning = {});

  struct Outcome {
    bool done = false;          // the response has ended; drop the context
    bool abort_engine = false;  // a stop string ended it: the scheduler must stop generating
  };
  Outcome on_event(schema::TokenEvent::Reader ev);
  // Ends the response with an error (before or during streaming).
  void fail(int status, const std::string& message);

 private:
  void start_stream_if_needed();
  void emit(const std::string& text, bool final);
  void finish(const std::string& reason, const std::string& stop_reason_json);
  std::string chunk(const ReasoningDelta& delta, const std::string* finish_reason, const std::string& stop_reason_json);
  ReasoningDelta split(const std::string& text, bool last);
  std::string usage_json() const;
  bool find_stop(std::size_t search_from);

  GenerationRequest req_;
  std::uint32_t num_prompt_;
  std::uint32_t num_generated_ = 0;
  std::unique_ptr<StreamDecoder> decoder_;
  http::ResponderPtr out_;
  ResponseIdentity ident_;
  std::string text_;        // generated text so far (cut at a stop string)
  std::size_t sent_ = 0;    // bytes of text_ already streamed
  std::size_t max_stop_ = 0;
  std::string stop_hit_;
  std::string text_prefix_;  // echo: the prompt, ahead of the completion
  bool role_sent_ = false;
  std::optional<ReasoningParser> reasoning_;
  bool streaming_ = false;
  bool ended_ = false;
};

}  // namespace troupe
