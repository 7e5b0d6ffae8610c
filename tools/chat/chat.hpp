#pragma once
#include <string>
#include <vector>

namespace troupe {
// `troupe chat "prompt" [--base-url URL] [--model M] [--max-tokens N] [--temperature T] [--color auto|always|never]`:
// streams the answer of /v1/chat/completions to the terminal; returns the process exit code.
int chat_main(const std::vector<std::string>& args);
}  // namespace troupe
