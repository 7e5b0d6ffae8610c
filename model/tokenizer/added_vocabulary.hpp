// Added and special tokens ("added_tokens" in tokenizer.json). They are found in the raw text before any
// normalization or pre-tokenization, leftmost-longest as HF's Aho-Corasick matcher does: first the tokens
// with normalized=false on the raw text, then those with normalized=true on each normalized segment.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace troupe::tok {

struct AddedToken {
  int32_t id = 0;
  std::string content;
  bool special = false;
  bool normalized = false;
  bool lstrip = false;
  bool rstrip = false;
  bool single_word = false;
};

// A run of text that is either an added token (id >= 0) or plain text to tokenize (id < 0).
struct Segment {
  uint32_t begin;
  uint32_t end;
  int32_t id;
};

// Byte trie over one set of added tokens; finds leftmost-longest matches.
class TokenMatcher {
 public:
  void add(const AddedToken& token, size_t index);
  bool empty() const { return nodes_.size() <= 1; }
  // Splits text[begin, end) into segments, appending to `out`.
  void split(std::string_view text, uint32_t begin, uint32_t end, const std::vector<AddedToken>& tokens,
             std::vector<Segment>& out) const;

 private:
  // Longest token starting at `pos` (index into the token list, or -1) and its end.
  int32_t longest_at(std::string_view text, size_t pos, size_t end, size_t& match_end) const;
  struct Node {
    int32_t token = -1;
  };
  std::vector<Node> nodes_{Node{}};
  std::unordered_map<uint32_t, uint32_t> edges_;  // (node << 8 | byte) -> child
  std::array<bool, 256> first_byte_{};
};

class AddedVocabulary {
 public:
  void add(AddedToken token);  // later entries with the same content replace earlier ones
  void build();                // call once after the last add()

  const std::vector<AddedToken>& tokens() const { return tokens_; }
  const AddedToken* find(int32_t id) const;
  const AddedToken* find(std::string_view content) const;

  const TokenMatcher& raw_matcher() const { return raw_; }
  const TokenMatcher& normalized_matcher() const { return normalized_; }

 private:
  std::vector<AddedToken> tokens_;
  std::unordered_map<int32_t, size_t> by_id_;
  std::unordered_map<std::string, size_t> by_content_;
  TokenMatcher raw_, normalized_;
};

}  // namespace troupe::tok
