// PCRE2 (JIT, UTF, UCP) wrapper for the pre-tokenizer and normalizer patterns read from tokenizer.json.
// std::regex lacks \p{L} and is slow; PCRE2 gives Unicode properties, lookahead and a JIT.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

struct pcre2_real_code_8;  // pcre2.h stays out of this header

namespace troupe::tok {

class Regex {
 public:
  // `literal` compiles the pattern as a plain string (Split/Replace {"String": ...} patterns).
  // Throws std::runtime_error naming the pattern when it does not compile.
  Regex(const std::string& pattern, bool literal);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Finds the first match in subject[offset..]; the subject must be valid UTF-8. The whole subject is the
  // match boundary: lookahead never sees past its end, as HF matches each piece on its own.
  bool find(std::string_view subject, size_t offset, size_t& begin, size_t& end) const;

  const std::string& pattern() const { return pattern_; }

 private:
  std::string pattern_;
  pcre2_real_code_8* code_ = nullptr;
  bool jit_ = false;
};

}  // namespace troupe::tok
