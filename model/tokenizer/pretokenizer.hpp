// tokenizer.json "pre_tokenizer": splits a normalized segment into the pieces ("words") that BPE encodes
// one at a time. Supported: Sequence, Split (regex from the file, or a literal), ByteLevel, Metaspace, Digits.
// ByteLevel does not map bytes to its printable alphabet here: the BPE vocabulary is converted to raw bytes
// at load, so pieces stay raw UTF-8 and the mapping costs nothing per encode.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace troupe::tok {

struct Piece {
  uint32_t begin;
  uint32_t end;
};

class PreTokenizer {
 public:
  PreTokenizer(const nlohmann::json& j, const std::string& where);  // null json: the segment is one piece
  ~PreTokenizer();
  PreTokenizer(PreTokenizer&&) noexcept;

  // True when a ByteLevel step is present: the model's vocabulary is then byte-level.
  bool byte_level() const { return byte_level_; }

  // Splits `text` into pieces (offsets into `text`). Steps that insert characters (Metaspace, ByteLevel's
  // prefix space) rewrite `text`. `at_input_start` says the segment starts the input (Metaspace "first").
  void split(std::string& text, std::vector<Piece>& pieces, bool at_input_start) const;

 private:
  struct Step;
  void add(const nlohmann::json& j, const std::string& where);
  std::vector<std::unique_ptr<Step>> steps_;
  bool byte_level_ = false;
};

}  // namespace troupe::tok
