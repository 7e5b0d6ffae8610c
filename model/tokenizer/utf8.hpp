// UTF-8 helpers shared by the tokenizer pipeline: lossy decoding that matches Rust's
// String::from_utf8_lossy (HF `tokenizers` decodes with it), and a few character classes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace troupe::tok {

// Length of the UTF-8 sequence a lead byte announces (1 for ASCII and for invalid bytes).
inline size_t utf8_len(unsigned char lead) {
  if (lead < 0x80) return 1;
  if (lead >= 0xF0) return 4;
  if (lead >= 0xE0) return 3;
  if (lead >= 0xC0) return 2;
  return 1;
}

// Appends one code point as UTF-8.
void append_utf8(std::string& out, uint32_t cp);

// Decodes the (valid) UTF-8 character at s[i]; advances i.
uint32_t next_codepoint(std::string_view s, size_t& i);

bool is_valid_utf8(std::string_view s);

// Converts bytes[0..n) to text the way from_utf8_lossy does: each maximal ill-formed subpart becomes one
// U+FFFD. When `final` is false, a trailing sequence that is still incomplete (but valid so far) is left
// unconsumed, so a streaming caller can wait for its remaining bytes. Returns the number of bytes consumed.
size_t append_lossy(std::string& out, std::string_view bytes, bool final);

// Unicode White_Space (what Rust's char::is_whitespace tests).
bool is_whitespace(uint32_t cp);

}  // namespace troupe::tok
