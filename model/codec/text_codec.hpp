#pragma once
// What the frontend needs from a model's vocabulary: text <-> token ids, a streaming decoder, the EOS id
// and the chat prompt. The real tokenizer and chat templates plug in behind this; `ByteCodec` serves the
// sim backend, whose vocabulary is the 256 byte values.
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace troupe {

struct ChatMessage {
  std::string role;
  std::string content;
};

// Turns token ids into text as they arrive. Never emits a broken UTF-8 sequence; the concatenation of
// all pieces plus flush() equals the full decode.
class StreamDecoder {
 public:
  virtual ~StreamDecoder() = default;
  virtual std::string push(std::int32_t id) = 0;
  virtual std::string flush() = 0;
};

class TextCodec {
 public:
  virtual ~TextCodec() = default;
  virtual std::vector<std::int32_t> encode(std::string_view text, bool add_special_tokens) const = 0;
  virtual std::string decode(std::span<const std::int32_t> ids) const = 0;
  virtual std::unique_ptr<StreamDecoder> stream() const = 0;
  virtual std::int32_t vocab_size() const = 0;
  virtual std::int32_t eos_id() const = 0;  // -1: none
  virtual std::string render_chat(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const = 0;
};

// Bytes as tokens (ids 0..255). No EOS. Chat is rendered as "role: content\n" lines.
class ByteCodec final : public TextCodec {
 public:
  std::vector<std::int32_t> encode(std::string_view text, bool add_special_tokens) const override;
  std::string decode(std::span<const std::int32_t> ids) const override;
  std::unique_ptr<StreamDecoder> stream() const override;
  std::int32_t vocab_size() const override { return 256; }
  std::int32_t eos_id() const override { return -1; }
  std::string render_chat(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const override;
};

// Length of the longest prefix of `s` that does not end inside a UTF-8 sequence.
std::size_t utf8_complete_prefix(std::string_view s);

}  // namespace troupe
