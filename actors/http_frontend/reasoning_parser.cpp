#include "actors/http_frontend/reasoning_parser.hpp"

namespace troupe {
namespace {
constexpr std::string_view kOpen = "<think>";
constexpr std::string_view kClose = "</think>";

// Length of the longest suffix of `s` that is a proper prefix of `tag`.
std::size_t partial_tag_suffix(std::string_view s, std::string_view tag) {
  for (std::size_t n = std::min(s.size(), tag.size() - 1); n > 0; --n)
    if (s.substr(s.size() - n) == tag.substr(0, n)) return n;
  return 0;
}
}  // namespace

ReasoningParser::ReasoningParser(bool prompt_opened) : state_(prompt_opened ? State::thinking : State::before) {}

bool ReasoningParser::prompt_opens_reasoning(std::string_view prompt) {
  auto end = prompt.find_last_not_of(" \t\r\n");
  if (end == std::string_view::npos) return false;
  prompt = prompt.substr(0, end + 1);
  auto open = prompt.rfind(kOpen);
  if (open == std::string_view::npos) return false;
  auto close = prompt.rfind(kClose);
  return close == std::string_view::npos || close < open;
}

void ReasoningParser::route(std::string_view text, ReasoningDelta& out) {
  (state_ == State::thinking ? out.reasoning : out.content) += text;
}

ReasoningDelta ReasoningParser::feed(std::string_view text) {
  ReasoningDelta out;
  std::string buf = held_ + std::string(text);
  held_.clear();
  std::string_view rest = buf;
  while (!rest.empty()) {
    if (state_ == State::answering) {
      out.content += rest;
      break;
    }
    // before: only an opening tag at the very start (leading whitespace allowed) starts reasoning.
    if (state_ == State::before) {
      auto lead = rest.find_first_not_of(" \t\r\n");
      if (lead == std::string_view::npos) {
        held_ = std::string(rest);
        break;
      }
      auto tail = rest.substr(lead);
      if (tail.substr(0, kOpen.size()) == kOpen) {
        state_ = State::thinking;
        rest = tail.substr(kOpen.size());
        continue;
      }
      if (tail.size() < kOpen.size() && kOpen.substr(0, tail.size()) == tail) {
        held_ = std::string(rest);
        break;
      }
      state_ = State::answering;
      continue;
    }
    // thinking: everything up to </think> is reasoning.
    auto close = rest.find(kClose);
    if (close != std::string_view::npos) {
      route(rest.substr(0, close), out);
      state_ = State::answering;
      rest = rest.substr(close + kClose.size());
      continue;
    }
    std::size_t keep = partial_tag_suffix(rest, kClose);
    route(rest.substr(0, rest.size() - keep), out);
    held_ = std::string(rest.substr(rest.size() - keep));
    break;
  }
  return out;
}

ReasoningDelta ReasoningParser::flush() {
  ReasoningDelta out;
  if (state_ == State::before) state_ = State::answering;
  route(held_, out);
  held_.clear();
  return out;
}

}  // namespace troupe
