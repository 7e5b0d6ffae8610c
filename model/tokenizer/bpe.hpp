// The BPE model of tokenizer.json: vocabulary, ranked merges, and the merge loop that turns one piece
// into ids. Two alphabets: byte-level (GPT-2 style: every byte is a symbol; the vocabulary is converted to
// raw bytes at load) and character-level with byte fallback (SentencePiece style: unknown characters
// become <0xNN> tokens).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "model/tokenizer/pair_table.hpp"
#include "model/tokenizer/word_cache.hpp"

namespace troupe::tok {

class BpeModel {
 public:
  // `model` is tokenizer.json's "model"; `byte_level` comes from the pre-tokenizer; `where` names the file.
  BpeModel(const nlohmann::json& model, bool byte_level, const std::string& where);

  // Appends the ids of one pre-tokenized piece (raw UTF-8).
  void encode(std::string_view piece, std::vector<int32_t>& out) const;

  std::optional<int32_t> token_to_id(std::string_view token) const;  // token as written in the vocab
  const std::string* id_to_token(int32_t id) const;                  // nullptr when unknown
  int32_t max_id() const { return static_cast<int32_t>(tokens_.size()) - 1; }
  bool byte_level() const { return byte_level_; }

 private:
  void load_vocab(const nlohmann::json& vocab, const std::string& where);
  void load_merges(const nlohmann::json& merges, const std::string& where);
  void initial_symbols(std::string_view piece, std::vector<int32_t>& syms) const;
  void merge_small(std::vector<int32_t>& syms) const;
  void merge_large(std::vector<int32_t>& syms) const;
  void encode_uncached(std::string_view piece, std::vector<int32_t>& syms) const;

  bool byte_level_ = false;
  bool ignore_merges_ = false;
  bool byte_fallback_ = false;
  bool fuse_unk_ = false;
  std::optional<int32_t> unk_id_;
  std::vector<std::string> tokens_;  // id -> token as written (empty for unused ids)
  std::vector<std::string> raw_;     // byte-level: id -> raw bytes
  std::unordered_map<std::string_view, int32_t> by_token_;  // views into tokens_
  std::unordered_map<std::string_view, int32_t> by_raw_;    // views into raw_ (byte-level lookups)
  std::array<int32_t, 256> byte_ids_{};      // byte-level: symbol of each byte (-1 if absent)
  std::array<int32_t, 256> fallback_ids_{};  // <0xNN> tokens (-1 if absent)
  PairTable merges_;
  std::unique_ptr<WordCache> cache_ = std::make_unique<WordCache>();
};

}  // namespace troupe::tok
