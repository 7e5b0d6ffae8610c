#include "model/tokenizer/incremental_detokenizer.hpp"

#include "model/tokenizer/tokenizer_impl.hpp"

#include <algorithm>

namespace troupe {

IncrementalDetokenizer::IncrementalDetokenizer(Tokenizer tokenizer, bool skip_special_tokens)
    : tokenizer_(std::move(tokenizer)), skip_special_(skip_special_tokens), stream_(tokenizer_.impl().decoder) {}

void IncrementalDetokenizer::prime(std::span<const int32_t> prompt) {
  std::span<const int32_t> suffix = prompt;
  // vLLM checks tokenizers' decode(suffix) with its default skip_special_tokens=True.
  for (size_t i = 4; prompt.size() > 4 && i < std::min<size_t>(prompt.size() + 1, 24); ++i)
    if (tokenizer_.decode(prompt.last(i), true).find("\xEF\xBF\xBD") == std::string::npos) {
      suffix = prompt.last(i);
      break;
    }
  // HF's stream shows text only once the decode so far ends in a whole character; text of the prompt's
  // last tokens that was still held then (a character cut by the prompt's end, with what preceded it in
  // those tokens) comes out with the first output token. The rest is the prompt's own: dropped.
  std::string shown;
  for (int32_t id : suffix) {
    tokenizer_.impl().decode_into(stream_, id, skip_special_, shown);
    if (stream_.at_char_boundary()) shown.clear();
  }
  std::string dropped;
  stream_.settle(dropped);
  carry_ = stream_.at_char_boundary() ? std::string() : shown;
}

std::string IncrementalDetokenizer::step(int32_t id) {
  std::string out = std::move(carry_);
  carry_.clear();
  tokenizer_.impl().decode_into(stream_, id, skip_special_, out);
  return out;
}

std::string IncrementalDetokenizer::flush() {
  std::string out = std::move(carry_);
  carry_.clear();
  stream_.finish(out);
  return out;
}

}  // namespace troupe
