#pragma once
// What the frontend needs from a model's vocabulary: text <-> token ids, a streaming decoder, the EOS id
// and the chat prompt. The real tokenizer and chat templates plug in behind this; `ByteCodec` serves the
// sim backend, whose vocabulary is the 256 byte values.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace troupe {

// A chat template that refused the conversation (raise_exception, a type error): the client's fault.
struct ChatRenderError : std::runtime_error {
  using std::runtime_error::runtime_error;
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
  virtual std::string decode(std::span<const std::int32_t> ids, bool skip_special_tokens = true) const = 0;
  // `prompt`: the ids the output follows. As vLLM's detokenizer, the stream is primed with the prompt's tail,
  // so the first output token decodes as a continuation (a SentencePiece "▁Hi" after prompt text gives " Hi").
  virtual std::unique_ptr<StreamDecoder> stream(bool skip_special_tokens = true,
                                                std::span<const std::int32_t> prompt = {}) const = 0;
  virtual std::int32_t vocab_size() const = 0;
  virtual std::int32_t eos_id() const = 0;  // -1: none
  // `context` as Hugging Face passes it to the template: messages, add_generation_prompt, tools and
  // chat_template_kwargs merged in. Throws ChatRenderError.
  virtual std::string render_chat(const nlohmann::ordered_json& context) const = 0;
  // Whether the rendered chat already holds BOS (then it is encoded without special tokens, as vLLM does).
  virtual bool chat_has_special_tokens() const { return true; }
  // False for skip-tokenizer-init: no text in or out, only token ids.
  virtual bool has_tokenizer() const { return true; }
};

// Bytes as tokens (ids 0..255), for the sim backend when no model is named. No EOS. Chat is rendered
// as "role: content\n" lines.
class ByteCodec final : public TextCodec {
 public:
  std::vector<std::int32_t> encode(std::string_view text, bool add_special_tokens) const override;
  std::string decode(std::span<const std::int32_t> ids, bool skip_special_tokens = true) const override;
  std::unique_ptr<StreamDecoder> stream(bool skip_special_tokens = true,
                                        std::span<const std::int32_t> prompt = {}) const override;
  std::int32_t vocab_size() const override { return 256; }
  std::int32_t eos_id() const override { return -1; }
  std::string render_chat(const nlohmann::ordered_json& context) const override;
};

// skip-tokenizer-init (vLLM): no tokenizer at all. Token ids are checked against `vocab_size`; text
// decodes to "" and encode/render_chat throw std::logic_error (the frontend refuses text before that).
std::shared_ptr<const TextCodec> make_token_id_codec(std::int32_t vocab_size, std::int32_t eos_id);

// A model directory's tokenizer.json + tokenizer_config.json (chat template, bos/eos); throws
// std::runtime_error naming the file when the tokenizer or its template cannot be loaded.
std::shared_ptr<const TextCodec> load_tokenizer_codec(const std::string& model_dir);

// Length of the longest prefix of `s` that does not end inside a UTF-8 sequence.
std::size_t utf8_complete_prefix(std::string_view s);

}  // namespace troupe
