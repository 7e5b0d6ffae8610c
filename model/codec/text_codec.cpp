#include "model/codec/text_codec.hpp"

#include <stdexcept>
#include <utility>

namespace troupe {

std::size_t utf8_complete_prefix(std::string_view s) {
  // Walk back over at most 3 continuation bytes to the lead byte of the last sequence.
  std::size_t n = s.size();
  std::size_t i = n;
  int back = 0;
  while (i > 0 && back < 4 && (static_cast<unsigned char>(s[i - 1]) & 0xC0) == 0x80) --i, ++back;
  if (i == 0) return back == 0 ? n : n;  // only continuation bytes: nothing to wait for
  unsigned char lead = static_cast<unsigned char>(s[i - 1]);
  std::size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
  std::size_t have = n - (i - 1);
  return (need > 1 && have < need) ? i - 1 : n;
}

namespace {
class ByteStream final : public StreamDecoder {
 public:
  std::string push(std::int32_t id) override {
    pending_.push_back(static_cast<char>(static_cast<unsigned char>(id & 0xFF)));
    std::size_t k = utf8_complete_prefix(pending_);
    std::string out = pending_.substr(0, k);
    pending_.erase(0, k);
    return out;
  }
  std::string flush() override { return std::exchange(pending_, {}); }

 private:
  std::string pending_;
};

class SilentStream final : public StreamDecoder {
 public:
  std::string push(std::int32_t) override { return {}; }
  std::string flush() override { return {}; }
};

class TokenIdCodec final : public TextCodec {
 public:
  TokenIdCodec(std::int32_t vocab, std::int32_t eos) : vocab_(vocab), eos_(eos) {}
  std::vector<std::int32_t> encode(std::string_view, bool) const override {
    throw std::logic_error("no tokenizer (skip-tokenizer-init): text cannot be encoded");
  }
  std::string decode(std::span<const std::int32_t>, bool) const override { return {}; }
  std::unique_ptr<StreamDecoder> stream(bool, std::span<const std::int32_t>) const override {
    return std::make_unique<SilentStream>();
  }
  std::int32_t vocab_size() const override { return vocab_; }
  std::int32_t eos_id() const override { return eos_; }
  std::string render_chat(const nlohmann::ordered_json&) const override {
    throw std::logic_error("no tokenizer (skip-tokenizer-init): chat cannot be rendered");
  }
  bool has_tokenizer() const override { return false; }

 private:
  std::int32_t vocab_, eos_;
};
}  // namespace

std::shared_ptr<const TextCodec> make_token_id_codec(std::int32_t vocab_size, std::int32_t eos_id) {
  return std::make_shared<TokenIdCodec>(vocab_size, eos_id);
}

std::vector<std::int32_t> ByteCodec::encode(std::string_view text, bool) const {
  std::vector<std::int32_t> ids;
  ids.reserve(text.size());
  for (unsigned char c : text) ids.push_back(c);
  return ids;
}

std::string ByteCodec::decode(std::span<const std::int32_t> ids, bool) const {
  std::string s;
  s.reserve(ids.size());
  for (auto id : ids) s.push_back(static_cast<char>(static_cast<unsigned char>(id & 0xFF)));
  return s;
}

std::unique_ptr<StreamDecoder> ByteCodec::stream(bool, std::span<const std::int32_t>) const { return std::make_unique<ByteStream>(); }

std::string ByteCodec::render_chat(const nlohmann::ordered_json& context) const {
  std::string s;
  for (auto& m : context.at("messages")) {
    auto c = m.find("content");
    s += m.at("role").get<std::string>() + ": " + (c != m.end() && c->is_string() ? c->get<std::string>() : "") + "\n";
  }
  if (context.value("add_generation_prompt", true)) s += "assistant: ";
  return s;
}

}  // namespace troupe
