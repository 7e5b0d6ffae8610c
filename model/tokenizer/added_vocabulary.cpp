#include "model/tokenizer/added_vocabulary.hpp"

#include <cstring>

#include "model/tokenizer/utf8.hpp"

namespace troupe::tok {
namespace {

// Word characters for single_word: Rust's char::is_alphanumeric, approximated as ASCII alnum, '_' excluded
// (HF tests is_alphanumeric), and every non-ASCII letter-or-digit treated as a word character.
bool is_word_char(uint32_t cp) {
  return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') ||
         (cp >= 0x80 && !is_whitespace(cp));
}

uint32_t last_codepoint(std::string_view s) {
  size_t i = s.size();
  while (i > 0 && (static_cast<unsigned char>(s[i - 1]) & 0xC0) == 0x80) --i;
  if (i > 0) --i;
  return next_codepoint(s, i);
}

}  // namespace

void TokenMatcher::add(const AddedToken& token, size_t index) {
  if (token.content.empty()) return;
  uint32_t node = 0;
  for (unsigned char c : token.content) {
    uint32_t key = node << 8 | c;
    auto it = edges_.find(key);
    if (it == edges_.end()) {
      nodes_.push_back({});
      it = edges_.emplace(key, static_cast<uint32_t>(nodes_.size() - 1)).first;
    }
    node = it->second;
  }
  nodes_[node].token = static_cast<int32_t>(index);
  first_byte_[static_cast<unsigned char>(token.content[0])] = true;
}

int32_t TokenMatcher::longest_at(std::string_view text, size_t pos, size_t end, size_t& match_end) const {
  int32_t best = -1;
  uint32_t node = 0;
  for (size_t i = pos; i < end; ++i) {
    auto it = edges_.find(node << 8 | static_cast<unsigned char>(text[i]));
    if (it == edges_.end()) break;
    node = it->second;
    if (nodes_[node].token >= 0) {
      best = nodes_[node].token;
      match_end = i + 1;
    }
  }
  return best;
}

void TokenMatcher::split(std::string_view text, uint32_t begin, uint32_t end, const std::vector<AddedToken>& tokens,
                         std::vector<Segment>& out) const {
  uint32_t plain_start = begin;  // start of the pending plain-text segment
  size_t pos = begin;
  while (pos < end) {
    if (!first_byte_[static_cast<unsigned char>(text[pos])]) {
      ++pos;
      continue;
    }
    size_t stop = 0;
    int32_t index = longest_at(text, pos, end, stop);
    if (index < 0) {
      ++pos;
      continue;
    }
    const AddedToken& t = tokens[static_cast<size_t>(index)];
    size_t start = pos;
    if (t.single_word) {
      bool left_ok = start == begin || !is_word_char(last_codepoint(text.substr(begin, start - begin)));
      size_t j = stop;
      bool right_ok = stop == end || !is_word_char(next_codepoint(text, j));
      if (!left_ok || !right_ok) {
        ++pos;
        continue;
      }
    }
    if (t.lstrip) {  // swallow whitespace on the left, but not past the previous match
      while (start > plain_start) {
        size_t k = start - 1;
        while (k > plain_start && (static_cast<unsigned char>(text[k]) & 0xC0) == 0x80) --k;
        size_t j = k;
        if (!is_whitespace(next_codepoint(text, j))) break;
        start = k;
      }
    }
    if (t.rstrip) {
      while (stop < end) {
        size_t j = stop;
        if (!is_whitespace(next_codepoint(text, j))) break;
        stop = j;
      }
    }
    if (plain_start < start) out.push_back({plain_start, static_cast<uint32_t>(start), -1});
    out.push_back({static_cast<uint32_t>(start), static_cast<uint32_t>(stop), t.id});
    plain_start = static_cast<uint32_t>(stop);
    pos = stop;
  }
  if (plain_start < end) out.push_back({plain_start, end, -1});
}

void AddedVocabulary::add(AddedToken token) {
  auto it = by_content_.find(token.content);
  if (it != by_content_.end()) {
    tokens_[it->second] = std::move(token);
    return;
  }
  by_content_.emplace(token.content, tokens_.size());
  tokens_.push_back(std::move(token));
}

void AddedVocabulary::build() {
  raw_ = {};
  normalized_ = {};
  by_id_.clear();
  for (size_t i = 0; i < tokens_.size(); ++i) {
    by_id_[tokens_[i].id] = i;
    (tokens_[i].normalized ? normalized_ : raw_).add(tokens_[i], i);
  }
}

const AddedToken* AddedVocabulary::find(int32_t id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &tokens_[it->second];
}

const AddedToken* AddedVocabulary::find(std::string_view content) const {
  auto it = by_content_.find(std::string(content));
  return it == by_content_.end() ? nullptr : &tokens_[it->second];
}

}  // namespace troupe::tok
