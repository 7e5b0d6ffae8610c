// Streaming detokenization for generated tokens. It runs the same decode stream as Tokenizer::decode, so
// the concatenation of everything step() returns plus flush() equals decode(all ids) exactly, and no
// returned piece ever ends inside a UTF-8 character (bytes of an unfinished character are held back;
// SentencePiece byte-fallback runs are held until they end, since HF judges them as a whole).
#pragma once

#include <cstdint>
#include <string>

#include "model/tokenizer/decoder.hpp"
#include "model/tokenizer/tokenizer.hpp"

namespace troupe {

class IncrementalDetokenizer {
 public:
  explicit IncrementalDetokenizer(Tokenizer tokenizer, bool skip_special_tokens = true);

  std::string step(int32_t id);  // the new text that is safe to emit (may be empty)
  std::string flush();           // the rest, at the end of the sequence

 private:
  Tokenizer tokenizer_;  // shares the loaded state: the stream points into it
  bool skip_special_;
  tok::DecodeStream stream_;
};

}  // namespace troupe
