// Troupe's chat-template engine: the subset of Jinja2 that Hugging Face chat templates use,
// rendered with HF's settings (trim_blocks, lstrip_blocks, HF's tojson, raise_exception,
// strftime_now) so prompts match what transformers' apply_chat_template produces, byte for byte.
//
// Limits (per render, so a hostile template cannot hang or exhaust memory):
//   1,000,000 loop iterations in total (filters over lists count too), 64 nested macro calls,
//   64 MiB of output (also the largest string or list built), 200 levels of syntactic nesting.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "model/chat_template/error.hpp"

namespace troupe {

namespace tmpl {
struct CompiledTemplate;
class Value;
}

class ChatTemplate {
 public:
  // Throws TemplateError (kind Syntax, with line:column) for syntax errors, unknown filters/tests
  // and constructs outside the supported subset.
  static ChatTemplate compile(std::string_view source);

  // Reads tokenizer_config.json: `chat_template` as a string or HF's [{name, template}] list (the
  // "default" entry), plus bos_token/eos_token given as strings or {"content": ...} objects.
  // Throws TemplateError when the file is missing, unreadable or has no template.
  static ChatTemplate from_tokenizer_config(const std::string& path);

  // `context` is a JSON object: messages, tools, add_generation_prompt, and any extra kwargs.
  // bos_token/eos_token from the tokenizer config are added when the context lacks them.
  // Throws TemplateError: kind Raised for raise_exception (what() is the template's message),
  // Runtime for type errors, Limit when a limit above is hit. Never crashes.
  // Prefer nlohmann::ordered_json: Python dicts keep insertion order, so tojson of tool schemas
  // only matches HF when key order survives; nlohmann::json sorts keys alphabetically.
  std::string render(const nlohmann::json& context) const;
  std::string render(const nlohmann::ordered_json& context) const;

  const std::string& source() const;
  const std::string& bos_token() const { return bos_token_; }
  const std::string& eos_token() const { return eos_token_; }

 private:
  std::string render_value(tmpl::Value context) const;
  std::shared_ptr<const tmpl::CompiledTemplate> impl_;
  std::string bos_token_;
  std::string eos_token_;
  bool has_bos_ = false;
  bool has_eos_ = false;
};

}  // namespace troupe
