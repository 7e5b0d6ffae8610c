#pragma once
// Generated tokens' logprobs in vLLM's response shapes (serving_completion / serving_chat). Pure: the
// request context keeps the tokens, this turns them into JSON.
//   completions: {"text_offset": [...], "token_logprobs": [...], "tokens": [...], "top_logprobs": [{tok: lp}]}
//   chat:        {"content": [{"token", "logprob", "bytes", "top_logprobs": [{"token", "logprob", "bytes"}]}]}
// As in vLLM, each step's candidates are the sampled token first, then the top N without it (a dict keyed
// by id); completions show up to N + 1 of them, chat the first N. Logprobs below -9999 are clamped to it.
#include "model/codec/text_codec.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace troupe {

struct GeneratedToken {
  std::int32_t id = 0;
  std::optional<float> logprob;                    // unset: the request asked for no logprobs
  std::vector<std::pair<std::int32_t, float>> top;  // the engine's top N, best first
};

// One prompt position's engine values (vLLM's prompt_logprobs): the prompt token's logprob and 1-based
// rank, and the top N (token id, logprob), best first.
struct PromptTokenLogprob {
  float logprob = 0;
  std::uint32_t rank = 0;
  std::vector<std::pair<std::int32_t, float>> top;
};

class LogprobFormatter {
 public:
  // as_token_ids: return_tokens_as_token_ids, token strings become "token_id:N".
  LogprobFormatter(const TextCodec& codec, bool as_token_ids) : codec_(&codec), as_ids_(as_token_ids) {}
  // The text the token adds after `prev` (the token before it, -1: none), special tokens kept, invalid
  // UTF-8 (a partial byte-level piece) replaced by U+FFFD as Python does. Decoded in context, as vLLM's
  // incremental detokenizer does, so a SentencePiece word keeps its leading space and pieces join to the text.
  std::string decoded(std::int32_t id, std::int32_t prev) const;
  // What the response shows for the token: the decoded piece, or "token_id:N".
  std::string shown(std::int32_t id, std::int32_t prev) const;

  // `tokens` with their logprobs; prev: the token before tokens[0] (the last prompt token for the first);
  // initial_offset: characters of text ahead of the first token.
  nlohmann::json completion(const std::vector<GeneratedToken>& tokens, std::int32_t num_top, std::int32_t prev,
                            std::size_t initial_offset) const;
  nlohmann::json chat(const std::vector<GeneratedToken>& tokens, std::int32_t num_top, std::int32_t prev) const;
  // vLLM's prompt_logprobs: null for the first prompt token (nothing predicts it), then per token a dict
  // keyed by token id: the prompt token with its rank, then the top N with ranks 1..N (the prompt token,
  // when among them, keeps its dict slot and takes the top entry's values, as Python's dict update does):
  //   [null, {"450": {"logprob": -2.1, "rank": 3, "decoded_token": "The"}, "11": {... "rank": 1 ...}}, ...]
  // `entries[i]` belongs to prompt[i + 1]; missing entries are null. decoded_token is the token alone
  // (null without a tokenizer).
  nlohmann::json prompt_logprobs(const std::vector<std::int32_t>& prompt,
                                 const std::vector<PromptTokenLogprob>& entries) const;

 private:
  const TextCodec* codec_;
  bool as_ids_;
};

// The candidates of one step, vLLM's order: the sampled token, then the top N minus the sampled one.
std::vector<std::pair<std::int32_t, float>> logprob_candidates(const GeneratedToken& t);
// Characters (code points) of UTF-8 text, as Python's len(str) counts them.
std::size_t utf8_length(const std::string& s);
// Python's bytes of str.encode("utf-8"), as a list of ints.
nlohmann::json utf8_bytes(const std::string& s);

}  // namespace troupe
