// The syntax tree the parser builds and the evaluator walks. Nodes are generic records with a kind
// tag rather than a class per construct: the language subset is small, and one shape keeps the
// parser and evaluator free of casts.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "model/chat_template/value.hpp"

namespace troupe::tmpl {

struct Pos {
  int line = 1;
  int col = 1;
};

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

enum class ExprKind {
  Literal,   // value
  Name,      // name
  List,      // children
  Tuple,     // children
  Dict,      // children: key0, value0, key1, value1, ...
  Attr,      // children[0].name
  Item,      // children[0][children[1]]
  Slice,     // children[0][children[1]:children[2]:children[3]] (any of 1..3 may be null)
  Call,      // children[0](children[1..], kwargs)
  Filter,    // children[0] | name(children[1..], kwargs); children[0] null inside {% filter %}
  Test,      // children[0] is [not] name(children[1..], kwargs)
  Unary,     // op children[0]: "not", "-", "+"
  Binary,    // children[0] op children[1]: and or + - * / // % ** ~ in "not in"
  Compare,   // children[0] ops[0] children[1] ops[1] children[2] ...
  Cond,      // children[0] if children[1] else children[2] (null: undefined)
};

struct Expr {
  ExprKind kind;
  Pos pos;
  Value value;
  std::string name;
  std::string op;
  std::vector<std::string> ops;
  bool negated = false;
  std::vector<ExprPtr> children;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;

  Expr(ExprKind k, Pos p) : kind(k), pos(p) {}
  Expr* child(size_t i) const { return i < children.size() ? children[i].get() : nullptr; }
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

enum class StmtKind {
  Text,        // text
  Output,      // {{ expr }}
  If,          // conds[i] -> bodies[i]; else_body
  For,         // for targets in expr [if cond] body else else_body
  Set,         // set targets = expr | set name.attr = expr | block set (body, filter)
  Macro,       // macro name(params) body
  CallBlock,   // call(params) expr body
  FilterBlock, // filter <filter chain in expr> body
  With,        // with params body
  Break,
  Continue,
};

struct Param {
  std::string name;
  ExprPtr default_value;  // null: required (undefined when missing, as in Jinja)
};

struct Stmt {
  StmtKind kind;
  Pos pos;
  std::string text;
  std::string name;                   // macro name, or namespace attribute target for Set
  std::vector<std::string> targets;   // loop variables / set targets
  ExprPtr expr;                       // value, iterable, call or filter chain
  ExprPtr cond;                       // for-loop filter
  std::vector<ExprPtr> conds;         // if / elif conditions
  std::vector<Body> bodies;           // if / elif bodies
  Body body;
  Body else_body;
  std::vector<Param> params;          // macro / caller parameters, with-assignments

  Stmt(StmtKind k, Pos p) : kind(k), pos(p) {}
};

const char* expr_kind_name(ExprKind k);

}  // namespace troupe::tmpl
