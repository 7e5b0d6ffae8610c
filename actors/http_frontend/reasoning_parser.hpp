#pragma once
// `reasoning-parser: deepseek_r1`: splits generated text into reasoning (inside <think>...</think>) and the
// answer. The R1 chat template already opens the block (the prompt ends with "<think>\n"), so the output
// may hold only "</think>"; when neither the prompt nor the output opens a block, everything is content.
// Streaming-safe: a tag split across chunks is held back until it is complete or ruled out.
#include <string>
#include <string_view>

namespace troupe {

struct ReasoningDelta {
  std::string reasoning;
  std::string content;
};

class ReasoningParser {
 public:
  // prompt_opened: the rendered prompt ends inside an open <think> block.
  explicit ReasoningParser(bool prompt_opened);
  ReasoningDelta feed(std::string_view text);
  ReasoningDelta flush();  // end of output: release anything held back

  // Whether a rendered prompt leaves a <think> block open (ignoring trailing whitespace).
  static bool prompt_opens_reasoning(std::string_view prompt);

 private:
  enum class State { before, thinking, answering };
  void route(std::string_view text, ReasoningDelta& out);
  State state_;
  std::string held_;  // a possible prefix of the tag we are waiting for
};

}  // namespace troupe
