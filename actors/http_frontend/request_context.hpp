#pragma once
// One HTTP generation request between submit and its last byte: turns the scheduler's token events into
// text (incremental detokenization, stop strings that never leak, even across chunks, the reasoning
// parser) and into the OpenAI response shapes, whole or as SSE chunks. With n > 1 it holds n choices,
// each fed by its own engine request (ids base_id .. base_id + n - 1). Touched only by the frontend
// actor after submit.
#include "actors/http_frontend/http_server.hpp"
#include "actors/http_frontend/logprobs_format.hpp"
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
  // reasoning: set for chat requests served with a reasoning parser (deepseek_r1); each choice gets a copy.
  RequestContext(GenerationRequest req, std::vector<std::int32_t> prompt_ids, const TextCodec& codec,
                 http::ResponderPtr out, ResponseIdentity ident, std::uint64_t base_id, std::uint32_t n,
                 std::optional<ReasoningParser> reasoning = {});

  struct Outcome {
    bool done = false;                     // the response has ended; drop every id of this context
    std::vector<std::uint64_t> abort_ids;  // engine requests that must stop (a stop string, a failed sibling)
  };
  Outcome on_event(schema::TokenEvent::Reader ev);
  // Ends the response with an error (before or during streaming).
  void fail(int status, const std::string& message);

  std::uint64_t base_id() const { return base_id_; }
  std::uint32_t n() const { return static_cast<std::uint32_t>(choices_.size()); }

 private:
  struct Choice {
    std::uint32_t index = 0;
    std::unique_ptr<StreamDecoder> decoder;
    std::optional<ReasoningParser> parser;
    std::string text;      // generated text so far (cut at a stop string)
    std::size_t sent = 0;  // bytes of text already streamed
    std::uint32_t generated = 0;
    bool started = false;  // its first chunk (role / echo) went out
    bool finished = false;
    std::string finish_reason;
    std::string stop_reason_json;  // "null", a token id, or a JSON string
    std::size_t stop_end = 0;      // where the stop string that cut the text ended (before the cut)
    // Generated tokens (with logprobs when asked), kept aligned with the text: those after a stop string
    // are dropped. tok_end[i]: size of `text` (before any cut) once token i was decoded.
    std::vector<GeneratedToken> toks;
    std::vector<std::size_t> tok_end;
    std::size_t toks_sent = 0;       // streaming: tokens already in a chunk
    std::size_t chars_sent = 0;      // streaming completions: text_offset of the next token
    bool prompt_ids_sent = false;    // streaming completions: prompt_token_ids went with the first chunk
    bool echo_lps_pending = false;   // echo with logprobs: the prompt's tokens lead its first logprobs
  };

  void start_stream_if_needed();
  void start_choice(Choice& c);
  void emit(Choice& c);
  void finish_choice(Choice& c, const std::string& reason, const std::string& stop_reason_json);
  void finish_response();
  // tok_upto: the chunk carries tokens [c.toks_sent, tok_upto) (their logprobs and ids).
  std::string chunk(Choice& c, const ReasoningDelta& delta, bool role, bool final, std::size_t tok_upto);
  std::string chunk_envelope(nlohmann::json choices, nlohmann::json prompt_ids = nullptr) const;
  void add_token_fields(nlohmann::json& choice, Choice& c, std::size_t from, std::size_t to, std::size_t offset);
  void drop_tokens_after_stop(Choice& c);
  nlohmann::json usage() const;
  ReasoningDelta split(Choice& c, const std::string& text, bool last);
  bool find_stop(Choice& c, std::size_t search_from);
  std::vector<std::uint64_t> other_live_ids(std::uint32_t except) const;
  // prompt_logprobs: kept from the first event that carries a token (every choice computes the same).
  void keep_prompt_logprobs(schema::TokenEvent::Reader ev);
  nlohmann::json prompt_logprobs_json() const;
  std::vector<GeneratedToken> prompt_tokens() const;  // echo: the prompt as logprob entries (first: none)

  GenerationRequest req_;
  std::vector<std::int32_t> prompt_ids_;
  std::uint32_t num_prompt_;
  LogprobFormatter fmt_;
  bool prompt_ids_sent_ = false;  // streaming chat: prompt_token_ids went with the first chunk
  http::ResponderPtr out_;
  ResponseIdentity ident_;
  std::uint64_t base_id_;
  std::vector<Choice> choices_;
  std::string text_prefix_;  // echo: the prompt, ahead of each completion
  std::optional<std::vector<PromptTokenLogprob>> prompt_lps_;
  std::size_t max_stop_ = 0;
  std::size_t num_finished_ = 0;
  bool streaming_ = false;
  bool ended_ = false;
};

}  // namespace troupe
