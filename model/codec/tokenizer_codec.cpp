#include "model/chat_template/chat_template.hpp"
#include "model/codec/text_codec.hpp"
#include "model/tokenizer/incremental_detokenizer.hpp"
#include "model/tokenizer/tokenizer.hpp"

#include <filesystem>
#include <fstream>
#include <optional>

namespace troupe {
namespace {

class DetokStream final : public StreamDecoder {
 public:
  DetokStream(const Tokenizer& t, bool skip, std::span<const std::int32_t> prompt) : d_(t, skip) { d_.prime(prompt); }
  std::string push(std::int32_t id) override { return d_.step(id); }
  std::string flush() override { return d_.flush(); }

 private:
  IncrementalDetokenizer d_;
};

class TokenizerCodec final : public TextCodec {
 public:
  TokenizerCodec(Tokenizer tok, std::optional<ChatTemplate> tmpl) : tok_(std::move(tok)), tmpl_(std::move(tmpl)) {}
  std::vector<std::int32_t> encode(std::string_view text, bool add_special_tokens) const override {
    return tok_.encode(text, add_special_tokens);
  }
  std::string decode(std::span<const std::int32_t> ids, bool skip_special_tokens) const override {
    return tok_.decode(ids, skip_special_tokens);
  }
  std::unique_ptr<StreamDecoder> stream(bool skip_special_tokens, std::span<const std::int32_t> prompt) const override {
    return std::make_unique<DetokStream>(tok_, skip_special_tokens, prompt);
  }
  std::int32_t vocab_size() const override { return tok_.vocab_size(); }
  std::int32_t eos_id() const override { return tok_.eos_id().value_or(-1); }
  std::string render_chat(const nlohmann::ordered_json& context) const override {
    if (!tmpl_) throw ChatRenderError("this model has no chat template (tokenizer_config.json has no chat_template)");
    try {
      return tmpl_->render(context);
    } catch (const std::exception& e) {
      throw ChatRenderError(std::string("the chat template failed: ") + e.what());
    }
  }

 private:
  Tokenizer tok_;
  std::optional<ChatTemplate> tmpl_;
};

bool has_chat_template(const std::string& config_path) {
  std::ifstream in(config_path);
  auto j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  return j.is_object() && j.contains("chat_template") && !j["chat_template"].is_null();
}

}  // namespace

std::shared_ptr<const TextCodec> load_tokenizer_codec(const std::string& model_dir) {
  namespace fs = std::filesystem;
  fs::path dir(model_dir);
  auto tj = dir / "tokenizer.json";
  auto tc = dir / "tokenizer_config.json";
  if (!fs::exists(tj)) throw std::runtime_error(tj.string() + " does not exist");
  std::string config = fs::exists(tc) ? tc.string() : "";
  auto tok = Tokenizer::from_files(tj.string(), config);
  std::optional<ChatTemplate> tmpl;
  // A config without a template serves completions only; a broken template is an error at start.
  if (!config.empty() && has_chat_template(config)) {
    try {
      tmpl = ChatTemplate::from_tokenizer_config(config);
    } catch (const std::exception& e) {
      throw std::runtime_error(config + ": " + e.what());
    }
  }
  return std::make_shared<TokenizerCodec>(std::move(tok), std::move(tmpl));
}

}  // namespace troupe
