#include "model/tokenizer/pretokenizer.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string_view>

#include "model/tokenizer/regex.hpp"
#include "model/tokenizer/utf8.hpp"

namespace troupe::tok {
namespace {

enum class Behavior { kIsolated, kRemoved, kMergedWithPrevious, kMergedWithNext, kContiguous };

// The regex HF's ByteLevel pre-tokenizer applies when use_regex is true (built into `tokenizers`, not in
// tokenizer.json).
constexpr const char* kGpt2Regex =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

Behavior parse_behavior(const std::string& b, const std::string& where) {
  if (b == "Isolated") return Behavior::kIsolated;
  if (b == "Removed") return Behavior::kRemoved;
  if (b == "MergedWithPrevious") return Behavior::kMergedWithPrevious;
  if (b == "MergedWithNext") return Behavior::kMergedWithNext;
  if (b == "Contiguous") return Behavior::kContiguous;
  throw std::runtime_error("tokenizer: " + where + ": unknown Split behavior '" + b + "'");
}

struct Range {
  Piece piece;
  bool match;
};

// Match/non-match ranges covering `p`, as HF's Pattern::find_matches lists them (empty matches dropped).
void find_ranges(const Regex& re, std::string_view text, Piece p, bool invert, std::vector<Range>& out) {
  std::string_view sub = text.substr(p.begin, p.end - p.begin);
  size_t pos = 0, prev = 0, b = 0, e = 0;
  while (pos <= sub.size() && re.find(sub, pos, b, e)) {
    if (e == b) {
      if (b >= sub.size()) break;
      pos = b + utf8_len(static_cast<unsigned char>(sub[b]));
      continue;
    }
    if (prev < b) out.push_back({{uint32_t(p.begin + prev), uint32_t(p.begin + b)}, invert});
    out.push_back({{uint32_t(p.begin + b), uint32_t(p.begin + e)}, !invert});
    prev = pos = e;
  }
  if (prev < sub.size()) out.push_back({{uint32_t(p.begin + prev), p.end}, invert});
}

// Applies a Split behavior to the ranges of one piece (the folds of HF's SplitDelimiterBehavior).
void apply_behavior(Behavior behavior, const std::vector<Range>& ranges, std::vector<Piece>& out) {
  size_t first = out.size();
  bool previous_match = false;
  switch (behavior) {
    case Behavior::kIsolated:
      for (const auto& r : ranges) out.push_back(r.piece);
      return;
    case Behavior::kRemoved:
      for (const auto& r : ranges)
        if (!r.match) out.push_back(r.piece);
      return;
    case Behavior::kMergedWithPrevious:
      for (const auto& r : ranges) {
        if (r.match && !previous_match && out.size() > first) out.back().end = r.piece.end;
        else out.push_back(r.piece);
        previous_match = r.match;
      }
      return;
    case Behavior::kMergedWithNext:
      for (size_t i = ranges.size(); i-- > 0;) {  // folds from the right, then restores the order
        const auto& r = ranges[i];
        if (r.match && !previous_match && out.size() > first) out.back().begin = r.piece.begin;
        else out.push_back(r.piece);
        previous_match = r.match;
      }
      std::reverse(out.begin() + static_cast<std::ptrdiff_t>(first), out.end());
      return;
    case Behavior::kContiguous:
      for (size_t i = 0; i < ranges.size(); ++i) {
        if (i > 0 && ranges[i].match == previous_match) out.back().end = ranges[i].piece.end;
        else out.push_back(ranges[i].piece);
        previous_match = ranges[i].match;
      }
      return;
  }
}

}  // namespace

struct PreTokenizer::Step {
  enum Kind { kSplit, kByteLevel, kMetaspace } kind;
  std::unique_ptr<Regex> regex;  // Split; ByteLevel with use_regex
  Behavior behavior = Behavior::kIsolated;
  bool invert = false;
  bool add_prefix_space = false;  // ByteLevel
  std::string replacement;        // Metaspace
  std::string prepend_scheme;     // Metaspace: always, first, never
  bool metaspace_split = true;
};

PreTokenizer::PreTokenizer(const nlohmann::json& j, const std::string& where) {
  if (!j.is_null()) add(j, where);
}
PreTokenizer::~PreTokenizer() = default;
PreTokenizer::PreTokenizer(PreTokenizer&&) noexcept = default;

void PreTokenizer::add(const nlohmann::json& j, const std::string& where) {
  const std::string type = j.at("type").get<std::string>();
  auto s = std::make_unique<Step>();
  if (type == "Sequence") {
    for (const auto& p : j.at("pretokenizers")) add(p, where);
    return;
  } else if (type == "Split") {
    s->kind = Step::kSplit;
    const auto& p = j.at("pattern");
    bool literal = p.contains("String");
    s->regex = std::make_unique<Regex>(p.at(literal ? "String" : "Regex").get<std::string>(), literal);
    s->behavior = parse_behavior(j.at("behavior").get<std::string>(), where);
    s->invert = j.value("invert", false);
  } else if (type == "Digits") {  // same as a Split on \p{N}+ (or each \p{N}), Isolated
    s->kind = Step::kSplit;
    s->regex = std::make_unique<Regex>(j.value("individual_digits", false) ? "\\p{N}" : "\\p{N}+", false);
  } else if (type == "ByteLevel") {
    s->kind = Step::kByteLevel;
    s->add_prefix_space = j.value("add_prefix_space", false);
    if (j.value("use_regex", true)) s->regex = std::make_unique<Regex>(kGpt2Regex, false);
    byte_level_ = true;
  } else if (type == "Metaspace") {
    s->kind = Step::kMetaspace;
    s->replacement = j.value("replacement", std::string("\xE2\x96\x81"));
    bool legacy_prefix = j.value("add_prefix_space", true);
    s->prepend_scheme = j.value("prepend_scheme", std::string(legacy_prefix ? "always" : "never"));
    s->metaspace_split = j.value("split", true);
    if (s->metaspace_split) s->regex = std::make_unique<Regex>(s->replacement, true);
  } else {
    throw std::runtime_error("tokenizer: " + where + ": pre_tokenizer type '" + type + "' is not supported");
  }
  steps_.push_back(std::move(s));
}

namespace {

// ByteLevel's add_prefix_space and Metaspace rewrite each piece; they rebuild the text around the pieces.
template <typename Rewrite>
void rewrite_pieces(std::string& text, std::vector<Piece>& pieces, Rewrite rewrite) {
  std::string out;
  out.reserve(text.size() + pieces.size() * 3);
  for (auto& p : pieces) {
    auto begin = static_cast<uint32_t>(out.size());
    rewrite(std::string_view(text).substr(p.begin, p.end - p.begin), p.begin, out);
    p = {begin, static_cast<uint32_t>(out.size())};
  }
  text.swap(out);
}

}  // namespace

void PreTokenizer::split(std::string& text, std::vector<Piece>& pieces, bool at_input_start) const {
  pieces.clear();
  if (text.empty()) return;
  pieces.push_back({0, static_cast<uint32_t>(text.size())});
  std::vector<Piece> next;
  std::vector<Range> ranges;
  for (const auto& s : steps_) {
    if (s->kind == Step::kByteLevel && s->add_prefix_space) {
      rewrite_pieces(text, pieces, [](std::string_view p, uint32_t, std::string& out) {
        if (p.empty() || p[0] != ' ') out.push_back(' ');
        out.append(p);
      });
    }
    if (s->kind == Step::kMetaspace) {
      const std::string& rep = s->replacement;
      const std::string scheme = s->prepend_scheme;
      rewrite_pieces(text, pieces, [&](std::string_view p, uint32_t begin, std::string& out) {
        bool starts = p.substr(0, rep.size()) == rep || (!p.empty() && p[0] == ' ');
        if (!starts && (scheme == "always" || (scheme == "first" && begin == 0 && at_input_start))) out += rep;
        for (char c : p) {
          if (c == ' ') out.append(rep);
          else out.push_back(c);
        }
      });
      if (!s->metaspace_split) continue;
    }
    const Regex* re = s->regex.get();
    if (re == nullptr) continue;
    Behavior behavior = s->kind == Step::kMetaspace ? Behavior::kMergedWithNext : s->behavior;
    next.clear();
    for (const auto& p : pieces) {
      ranges.clear();
      find_ranges(*re, text, p, s->invert, ranges);
      apply_behavior(behavior, ranges, next);
    }
    pieces.swap(next);
  }
}

}  // namespace troupe::tok
