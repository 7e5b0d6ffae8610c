// Walks the syntax tree and produces the rendered text. Scoping follows Jinja: `for`, macros and
// `with` open a scope, `if` does not, so `set` inside a loop is invisible after it (hence namespace()).
#pragma once

#include <memory>
#include <string>
#include <unordered_map>

#include "model/chat_template/ast.hpp"
#include "model/chat_template/methods.hpp"

namespace troupe::tmpl {

struct Scope {
  std::unordered_map<std::string, Value> vars;
  std::shared_ptr<Scope> parent;
  const Value* lookup(const std::string& name) const;
};

class Evaluator {
 public:
  explicit Evaluator(Budget budget) : budget_(budget) {}
  // Renders `body` with `context` as the template's variables (globals sit underneath).
  std::string render(const Body& body, const Dict& context);

  enum class Flow { Normal, Break, Continue };

 private:
  using ScopePtr = std::shared_ptr<Scope>;

  Flow exec_body(const Body& body, const ScopePtr& scope);
  Flow exec(const Stmt& s, const ScopePtr& scope);
  void exec_for(const Stmt& s, const ScopePtr& scope, Flow& flow);
  void exec_set(const Stmt& s, const ScopePtr& scope);
  void exec_macro(const Stmt& s, const ScopePtr& scope);
  void exec_call_block(const Stmt& s, const ScopePtr& scope);
  Value make_macro(const std::string& name, const std::vector<Param>& params, const Body& body,
                   const ScopePtr& scope, bool is_caller);
  std::string capture(const Body& body, const ScopePtr& scope);
  void write(const std::string& s);

  Value eval(const Expr& e, const ScopePtr& scope);
  Value eval_inner(const Expr& e, const ScopePtr& scope);
  Value eval_call(const Expr& e, const ScopePtr& scope);
  Value eval_filter(const Expr& e, const ScopePtr& scope, const Value* block_input);
  Value eval_binary(const Expr& e, const ScopePtr& scope);
  Value eval_compare(const Expr& e, const ScopePtr& scope);
  CallArgs eval_args(const Expr& e, const ScopePtr& scope, size_t first);
  Value arith(const std::string& op, const Value& a, const Value& b);

  Budget budget_;
  std::string* out_ = nullptr;
  int call_depth_ = 0;
};

}  // namespace troupe::tmpl
