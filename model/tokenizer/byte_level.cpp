#include "model/tokenizer/byte_level.hpp"

#include <array>
#include <cstdint>

#include "model/tokenizer/utf8.hpp"

namespace troupe::tok {
namespace {

struct ByteMap {
  std::array<std::string, 256> to_char;
  std::array<int16_t, 512> from_cp;  // code points used by the map are all below 0x144

  ByteMap() {
    from_cp.fill(-1);
    // Printable Latin-1 bytes map to themselves; the rest go to 256, 257, ... in byte order (GPT-2).
    uint32_t next = 256;
    for (uint32_t b = 0; b < 256; ++b) {
      bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      uint32_t cp = printable ? b : next++;
      append_utf8(to_char[b], cp);
      from_cp[cp] = static_cast<int16_t>(b);
    }
  }
};

const ByteMap& byte_map() {
  static const ByteMap map;
  return map;
}

}  // namespace

const std::string& byte_to_char(unsigned char b) { return byte_map().to_char[b]; }

std::optional<std::string> byte_level_to_bytes(std::string_view token) {
  const auto& map = byte_map();
  std::string out;
  out.reserve(token.size());
  size_t i = 0;
  while (i < token.size()) {
    uint32_t cp = next_codepoint(token, i);
    if (cp >= map.from_cp.size() || map.from_cp[cp] < 0) return std::nullopt;
    out.push_back(static_cast<char>(map.from_cp[cp]));
  }
  return out;
}

std::string bytes_to_byte_level(std::string_view bytes) {
  std::string out;
  for (char c : bytes) out += byte_to_char(static_cast<unsigned char>(c));
  return out;
}

}  // namespace troupe::tok
