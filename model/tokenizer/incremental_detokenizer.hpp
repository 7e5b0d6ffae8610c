// Streaming detokenization for generated tokens. It runs the same decode stream as Tokenizer::decode, so
// the concatenation of everything step() returns plus flush() equals decode(all ids) exactly, and no
// returned piece ever ends inside a UTF-8 character (bytes of an unfinished character are held back;
// SentencePiece byte-fallback runs are held until they end, since HF judges them as a whole).
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "model/tokenizer/decoder.hpp"
#include "model/tokenizer/tokenizer.hpp"

namespace troupe {

class IncrementalDetokenizer {
 public:
  explicit IncrementalDetokenizer(Tokenizer tokenizer, bool skip_special_tokens = true);

  // Feeds the tail of the prompt the output follows, before the first step(), and drops its text. Matches
  // vLLM's FastIncrementalDetokenizer: the shortest suffix of 4..23 tokens that decodes without U+FFFD (else
  // the whole prompt), so a leading "▁" of the first output token becomes a space, as in a full decode.
  void prime(std::span<const int32_t> prompt);
  std::string step(int32_t id);  // the new text that is safe to emit (may be empty)
  std::string flush();           // the rest, at the end of the sequence

 private:
  Tokenizer tokenizer_;  // shares the loaded state: the stream points into it
  bool skip_special_;
  tok::DecodeStream stream_;
  std::string carry_;  // prime(): held prompt text that HF shows with the first output token
};

}  // namespace troupe
