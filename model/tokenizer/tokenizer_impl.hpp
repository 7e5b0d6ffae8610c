// Internal state of a loaded tokenizer, shared by Tokenizer copies and IncrementalDetokenizer.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "model/tokenizer/added_vocabulary.hpp"
#include "model/tokenizer/bpe.hpp"
#include "model/tokenizer/decoder.hpp"
#include "model/tokenizer/normalizer.hpp"
#include "model/tokenizer/pretokenizer.hpp"

namespace troupe::tok {

struct TokenizerImpl {
  // `tj`: tokenizer.json, `cfg`: tokenizer_config.json or null; the paths name the files in errors.
  TokenizerImpl(const nlohmann::json& tj, const nlohmann::json& cfg, const std::string& path,
                const std::string& cfg_path);

  void encode(std::string_view text, bool add_special_tokens, std::vector<int32_t>& out) const;
  // Feeds one id into a decode stream (skips unknown ids, and special ones when asked).
  void decode_into(DecodeStream& stream, int32_t id, bool skip_special, std::string& out) const;
  const std::string* token_text(int32_t id) const;  // added content or vocab token

  AddedVocabulary added;
  Normalizer normalizer;
  PreTokenizer pre_tokenizer;
  BpeModel model;
  Decoder decoder;
  std::vector<int32_t> prefix_ids, suffix_ids;  // what add_special_tokens adds
  std::optional<int32_t> bos, eos;
  std::vector<std::string> decode_bytes;  // byte-level decoder: raw bytes of each id
  std::vector<bool> special;              // by id
  int32_t vocab_size = 0;

 private:
  void load_added_tokens(const nlohmann::json& tj, const nlohmann::json& cfg);
  void load_post_processor(const nlohmann::json& tj, const nlohmann::json& cfg, const std::string& path);
  void encode_segment(std::string_view text, bool at_input_start, std::vector<int32_t>& out) const;
  void encode_plain(std::string_view text, bool at_input_start, std::vector<int32_t>& out) const;
};

}  // namespace troupe::tok
