// Hugging Face tokenizer.json loader and BPE tokenizer (DeepSeek-R1/V3, Qwen2, Llama-3 byte-level BPE;
// Llama-2 SentencePiece-style BPE with byte fallback). Encodings match HF `tokenizers` id for id.
// Immutable after loading and cheap to copy (shared state); encode/decode are safe from many threads.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace troupe {
namespace tok {
struct TokenizerImpl;
}

class Tokenizer {
 public:
  // Throws std::runtime_error naming the file and the problem (missing file, bad JSON, unsupported model,
  // normalizer, pre-tokenizer or decoder). tokenizer_config_json may be empty.
  static Tokenizer from_files(const std::string& tokenizer_json, const std::string& tokenizer_config_json);

  // add_special_tokens adds bos/eos as tokenizer_config.json's add_bos_token/add_eos_token say (what
  // transformers does), or else as tokenizer.json's post_processor template says.
  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens) const;
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens) const;

  int32_t vocab_size() const;  // highest id + 1, added tokens included
  std::optional<int32_t> token_to_id(std::string_view token) const;
  std::string id_to_token(int32_t id) const;  // "" for an unknown id
  std::optional<int32_t> bos_id() const;
  std::optional<int32_t> eos_id() const;
  bool is_special(int32_t id) const;

  const tok::TokenizerImpl& impl() const { return *impl_; }

 private:
  explicit Tokenizer(std::shared_ptr<const tok::TokenizerImpl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const tok::TokenizerImpl> impl_;
};

}  // namespace troupe
