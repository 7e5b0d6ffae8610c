// GPT-2's byte <-> printable-character map used by byte-level BPE vocabularies ("Ġ" is byte 0x20).
// The encoder never maps text: it converts the vocabulary to raw bytes once at load, so encoding works on
// the input bytes directly. Decoding maps token strings back to bytes.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace troupe::tok {

// The mapped character (as UTF-8) of each byte.
const std::string& byte_to_char(unsigned char b);

// Raw bytes of a byte-level token string, or nullopt when it holds a character outside the map
// (added tokens such as "<｜User｜>" are stored as plain text).
std::optional<std::string> byte_level_to_bytes(std::string_view token);

// Byte-level form of raw bytes ("Ġthe" for " the").
std::string bytes_to_byte_level(std::string_view bytes);

}  // namespace troupe::tok
