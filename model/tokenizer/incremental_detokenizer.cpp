#include "model/tokenizer/incremental_detokenizer.hpp"

#include "model/tokenizer/tokenizer_impl.hpp"

namespace troupe {

IncrementalDetokenizer::IncrementalDetokenizer(Tokenizer tokenizer, bool skip_special_tokens)
    : tokenizer_(std::move(tokenizer)), skip_special_(skip_special_tokens), stream_(tokenizer_.impl().decoder) {}

std::string IncrementalDetokenizer::step(int32_t id) {
  std::string out;
  tokenizer_.impl().decode_into(stream_, id, skip_special_, out);
  return out;
}

std::string IncrementalDetokenizer::flush() {
  std::string out;
  stream_.finish(out);
  return out;
}

}  // namespace troupe
