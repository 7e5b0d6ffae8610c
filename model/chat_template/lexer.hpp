// Splits template source into text and tag tokens, applying Hugging Face's whitespace settings
// (trim_blocks, lstrip_blocks, no trailing newline) and the -/+ markers exactly where Jinja does,
// so the parser never has to think about whitespace.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "model/chat_template/ast.hpp"

namespace troupe::tmpl {

enum class TokKind { Text, VarBegin, VarEnd, BlockBegin, BlockEnd, Name, String, Int, Float, Op, Eof };

struct Token {
  TokKind kind;
  std::string text;  // text, name, operator, or decoded string literal
  Value number;      // Int / Float
  Pos pos;
};

struct LexOptions {
  bool trim_blocks = true;
  bool lstrip_blocks = true;
  bool keep_trailing_newline = false;
};

// Throws TemplateError(Syntax) with a position for unclosed tags, comments and strings.
std::vector<Token> tokenize(std::string_view source, const LexOptions& opts = {});

}  // namespace troupe::tmpl
