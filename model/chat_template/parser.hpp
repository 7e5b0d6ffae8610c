// Builds the syntax tree from tokens. Anything outside the supported subset (include, extends,
// import, recursive loops, ...) is rejected here, at compile time, with a position.
#pragma once

#include <vector>

#include "model/chat_template/ast.hpp"
#include "model/chat_template/lexer.hpp"

namespace troupe::tmpl {

// Nesting limit for expressions and blocks: keeps the recursive-descent parser (and later the
// tree-walking evaluator) far from the stack limit on hostile input.
inline constexpr int kMaxNesting = 200;

Body parse(std::vector<Token> tokens);  // throws TemplateError(Syntax)

}  // namespace troupe::tmpl
