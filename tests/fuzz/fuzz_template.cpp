// libFuzzer target: the chat-template engine compiles and renders any source within its limits,
// answering bad templates with TemplateError, never a crash or a hang.
#include "model/chat_template/chat_template.hpp"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view src(reinterpret_cast<const char*>(data), size);
  static const auto ctx = nlohmann::ordered_json::parse(R"({
    "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "hi"},
                 {"role": "assistant", "content": "<think>x</think>y",
                  "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": "{}"}}]},
                 {"role": "tool", "content": "42"}],
    "add_generation_prompt": true, "bos_token": "<s>", "eos_token": "</s>",
    "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]})");
  try {
    auto t = troupe::ChatTemplate::compile(src);
    (void)t.render(ctx);
  } catch (const std::exception&) {
    // TemplateError (and nothing worse) is the expected answer to bad input.
  }
  return 0;
}
