#include "model/tokenizer/utf8.hpp"

namespace troupe::tok {

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

uint32_t next_codepoint(std::string_view s, size_t& i) {
  auto b = static_cast<unsigned char>(s[i]);
  size_t n = utf8_len(b);
  if (i + n > s.size()) n = 1;
  uint32_t cp = n == 1 ? b : n == 2 ? (b & 0x1F) : n == 3 ? (b & 0x0F) : (b & 0x07);
  for (size_t k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  i += n;
  return cp;
}

namespace {

// Valid range of the second byte after `lead` (Unicode Table 3-7); the others are always 80..BF.
void second_byte_range(unsigned char lead, unsigned char& lo, unsigned char& hi) {
  lo = 0x80;
  hi = 0xBF;
  if (lead == 0xE0) lo = 0xA0;
  else if (lead == 0xED) hi = 0x9F;
  else if (lead == 0xF0) lo = 0x90;
  else if (lead == 0xF4) hi = 0x8F;
}

// Length of the well-formed prefix of the sequence starting at s[0]: returns n == expected on a complete
// character, or how many bytes form a maximal subpart (>= 1) otherwise. `expected` gets the full length.
size_t well_formed_prefix(std::string_view s, size_t& expected) {
  auto lead = static_cast<unsigned char>(s[0]);
  if (lead < 0x80) return expected = 1;
  if (lead < 0xC2 || lead > 0xF4) {
    expected = 1;
    return 0;  // never valid: a lone byte
  }
  expected = utf8_len(lead);
  size_t k = 1;
  for (; k < expected && k < s.size(); ++k) {
    auto c = static_cast<unsigned char>(s[k]);
    unsigned char lo = 0x80, hi = 0xBF;
    if (k == 1) second_byte_range(lead, lo, hi);
    if (c < lo || c > hi) break;
  }
  return k;
}

}  // namespace

size_t append_lossy(std::string& out, std::string_view bytes, bool final) {
  size_t i = 0;
  while (i < bytes.size()) {
    auto b = static_cast<unsigned char>(bytes[i]);
    if (b < 0x80) {  // ASCII fast path
      size_t j = i + 1;
      while (j < bytes.size() && static_cast<unsigned char>(bytes[j]) < 0x80) ++j;
      out.append(bytes.substr(i, j - i));
      i = j;
      continue;
    }
    size_t expected = 0;
    size_t ok = well_formed_prefix(bytes.substr(i), expected);
    if (ok == expected) {
      out.append(bytes.substr(i, ok));
      i += ok;
    } else if (i + ok == bytes.size() && ok > 0 && !final) {
      break;  // incomplete but could still become valid
    } else {
      out.append("\xEF\xBF\xBD");
      i += ok == 0 ? 1 : ok;
    }
  }
  return i;
}

bool is_valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    size_t expected = 0;
    if (well_formed_prefix(s.substr(i), expected) != expected) return false;
    i += expected;
  }
  return true;
}

bool is_whitespace(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
         cp == 0x3000;
}

}  // namespace troupe::tok
