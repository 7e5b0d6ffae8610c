#include "model/chat_template/ast.hpp"

namespace troupe::tmpl {

const char* expr_kind_name(ExprKind k) {
  switch (k) {
    case ExprKind::Literal: return "literal";
    case ExprKind::Name: return "name";
    case ExprKind::List: return "list";
    case ExprKind::Tuple: return "tuple";
    case ExprKind::Dict: return "dict";
    case ExprKind::Attr: return "attribute";
    case ExprKind::Item: return "subscript";
    case ExprKind::Slice: return "slice";
    case ExprKind::Call: return "call";
    case ExprKind::Filter: return "filter";
    case ExprKind::Test: return "test";
    case ExprKind::Unary: return "unary operator";
    case ExprKind::Binary: return "binary operator";
    case ExprKind::Compare: return "comparison";
    case ExprKind::Cond: return "conditional expression";
  }
  return "expression";
}

}  // namespace troupe::tmpl
