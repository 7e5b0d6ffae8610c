#include "model/chat_template/evaluator.hpp"

#include <cmath>
#include <stdexcept>

#include "model/chat_template/error.hpp"
#include "model/chat_template/filters.hpp"

namespace troupe::tmpl {

const Value* Scope::lookup(const std::string& name) const {
  for (const Scope* s = this; s; s = s->parent.get()) {
    auto it = s->vars.find(name);
    if (it != s->vars.end()) return &it->second;
  }
  return nullptr;
}

namespace {
[[noreturn]] void runtime_error_at(const std::string& msg, Pos p) {
  throw TemplateError(TemplateError::Kind::Runtime, msg, p.line, p.col);
}
void require_defined(const Value& v) {
  if (v.is_undefined())
    throw std::runtime_error("'" + (v.undefined_name().empty() ? std::string("value") : v.undefined_name()) +
                             "' is undefined");
}
}  // namespace

std::string Evaluator::render(const Body& body, const Dict& context) {
  auto globals = std::make_shared<Scope>();
  Dict g;
  add_globals(g, budget_);
  for (auto& [k, v] : g.items) globals->vars[k] = v;
  auto top = std::make_shared<Scope>();
  top->parent = globals;
  for (auto& [k, v] : context.items) top->vars[k] = v;
  std::string out;
  out_ = &out;
  exec_body(body, top);
  return out;
}

void Evaluator::write(const std::string& s) {
  out_->append(s);
  budget_.check_size(out_->size());
}

std::string Evaluator::capture(const Body& body, const ScopePtr& scope) {
  std::string buf;
  std::string* saved = out_;
  out_ = &buf;
  try {
    exec_body(body, scope);
  } catch (...) {
    out_ = saved;
    throw;
  }
  out_ = saved;
  return buf;
}

Evaluator::Flow Evaluator::exec_body(const Body& body, const ScopePtr& scope) {
  for (const auto& s : body) {
    Flow f = exec(*s, scope);
    if (f != Flow::Normal) return f;
  }
  return Flow::Normal;
}

Evaluator::Flow Evaluator::exec(const Stmt& s, const ScopePtr& scope) {
  switch (s.kind) {
    case StmtKind::Text: write(s.text); return Flow::Normal;
    case StmtKind::Output: write(eval(*s.expr, scope).str()); return Flow::Normal;
    case StmtKind::If:
      for (size_t i = 0; i < s.conds.size(); ++i)
        if (eval(*s.conds[i], scope).truthy()) return exec_body(s.bodies[i], scope);
      return exec_body(s.else_body, scope);
    case StmtKind::For: {
      Flow f = Flow::Normal;
      exec_for(s, scope, f);
      return f;
    }
    case StmtKind::Set: exec_set(s, scope); return Flow::Normal;
    case StmtKind::Macro: exec_macro(s, scope); return Flow::Normal;
    case StmtKind::CallBlock: exec_call_block(s, scope); return Flow::Normal;
    case StmtKind::FilterBlock: {
      Value body(capture(s.body, scope));
      write(eval_filter(*s.expr, scope, &body).str());
      return Flow::Normal;
    }
    case StmtKind::With: {
      auto inner = std::make_shared<Scope>();
      inner->parent = scope;
      for (auto& p : s.params) inner->vars[p.name] = eval(*p.default_value, scope);
      return exec_body(s.body, inner);
    }
    case StmtKind::Break: return Flow::Break;
    case StmtKind::Continue: return Flow::Continue;
  }
  return Flow::Normal;
}

void Evaluator::exec_for(const Stmt& s, const ScopePtr& scope, Flow& flow) {
  Value iterable = eval(*s.expr, scope);
  std::vector<Value> items;
  try {
    items = iterate(iterable, budget_);
  } catch (const TemplateError&) {
    throw;
  } catch (const std::exception& e) {
    runtime_error_at(e.what(), s.expr->pos);
  }
  auto loop_scope = std::make_shared<Scope>();
  loop_scope->parent = scope;
  auto bind = [&](const Value& item) {
    if (s.targets.size() == 1) {
      loop_scope->vars[s.targets[0]] = item;
      return;
    }
    if (!item.is_list() || item.as_list().size() != s.targets.size())
      runtime_error_at("cannot unpack " + item.type_name() + " into " + std::to_string(s.targets.size()) + " loop variables", s.pos);
    for (size_t i = 0; i < s.targets.size(); ++i) loop_scope->vars[s.targets[i]] = item.as_list()[i];
  };
  if (s.cond) {  // the loop filter runs before loop.length/index are known, as in Jinja
    std::vector<Value> kept;
    for (auto& item : items) {
      budget_.tick();
      bind(item);
      if (eval(*s.cond, loop_scope).truthy()) kept.push_back(item);
    }
    items.swap(kept);
  }
  if (items.empty()) {
    flow = exec_body(s.else_body, scope);
    return;
  }
  const int64_t n = static_cast<int64_t>(items.size());
  for (int64_t i = 0; i < n; ++i) {
    budget_.tick();
    bind(items[static_cast<size_t>(i)]);
    auto loop = std::make_shared<Dict>();
    loop->set("index", Value(i + 1));
    loop->set("index0", Value(i));
    loop->set("revindex", Value(n - i));
    loop->set("revindex0", Value(n - i - 1));
    loop->set("first", Value(i == 0));
    loop->set("last", Value(i == n - 1));
    loop->set("length", Value(n));
    loop->set("depth", Value(1));
    loop->set("depth0", Value(0));
    if (i > 0) loop->set("previtem", items[static_cast<size_t>(i - 1)]);
    if (i + 1 < n) loop->set("nextitem", items[static_cast<size_t>(i + 1)]);
    loop->set("cycle", Value::function("loop.cycle", [i](CallArgs& a) {
      if (a.positional.empty()) throw std::runtime_error("loop.cycle() needs at least one argument");
      return a.positional[static_cast<size_t>(i) % a.positional.size()];
    }));
    loop_scope->vars["loop"] = Value(loop);
    if (exec_body(s.body, loop_scope) == Flow::Break) break;
  }
}

void Evaluator::exec_set(const Stmt& s, const ScopePtr& scope) {
  Value v;
  if (s.expr) {
    v = eval(*s.expr, scope);
  } else {
    v = Value(capture(s.body, scope));
    if (s.cond) v = eval_filter(*s.cond, scope, &v);
  }
  if (!s.name.empty()) {
    const Value* target = scope->lookup(s.name);
    if (!target || !target->is_namespace())
      runtime_error_at("cannot assign attribute on non-namespace object '" + s.name + "'", s.pos);
    target->as_namespace().attrs.set(s.targets[0], v);
    return;
  }
  if (s.targets.size() == 1) {
    scope->vars[s.targets[0]] = v;
    return;
  }
  if (!v.is_list() || v.as_list().size() != s.targets.size())
    runtime_error_at("cannot unpack " + v.type_name() + " into " + std::to_string(s.targets.size()) + " names", s.pos);
  for (size_t i = 0; i < s.targets.size(); ++i) scope->vars[s.targets[i]] = v.as_list()[i];
}

Value Evaluator::make_macro(const std::string& name, const std::vector<Param>& params, const Body& body,
                            const ScopePtr& scope, bool is_caller) {
  // The AST outlives the render, and macros cannot escape it: capturing pointers is safe.
  const std::vector<Param>* ps = &params;
  const Body* b = &body;
  return Value::function(name, [this, ps, b, scope, name, is_caller](CallArgs& args) {
    if (++call_depth_ > budget_.max_call_depth) {
      --call_depth_;
      throw TemplateError(TemplateError::Kind::Limit, "macro recursion too deep (limit " +
                                                          std::to_string(budget_.max_call_depth) + ") in '" + name + "'");
    }
    auto frame = std::make_shared<Scope>();
    frame->parent = scope;
    List varargs;
    for (size_t i = 0; i < args.positional.size(); ++i) {
      if (i < ps->size()) frame->vars[(*ps)[i].name] = args.positional[i];
      else varargs.push_back(args.positional[i]);
    }
    auto extra = std::make_shared<Dict>();
    for (auto& [k, v] : args.kwargs) {
      bool known = k == "caller";
      for (auto& p : *ps) known = known || p.name == k;
      if (known) frame->vars[k] = v;
      else extra->set(k, v);
    }
    for (auto& p : *ps)
      if (!frame->vars.count(p.name))
        frame->vars[p.name] = p.default_value ? eval(*p.default_value, frame) : Value::undefined(p.name);
    frame->vars["varargs"] = Value(std::move(varargs));
    frame->vars["kwargs"] = Value(extra);
    if (!is_caller && !frame->vars.count("caller")) frame->vars["caller"] = Value::undefined("caller");
    struct Depth { int& d; ~Depth() { --d; } } guard{call_depth_};
    return Value(capture(*b, frame));
  });
}

void Evaluator::exec_macro(const Stmt& s, const ScopePtr& scope) {
  scope->vars[s.name] = make_macro(s.name, s.params, s.body, scope, false);
}

void Evaluator::exec_call_block(const Stmt& s, const ScopePtr& scope) {
  Value caller = make_macro("caller", s.params, s.body, scope, true);
  const Expr& call = *s.expr;
  Value fn = eval(*call.children[0], scope);
  CallArgs args = eval_args(call, scope, 1);
  args.kwargs.emplace_back("caller", caller);
  if (!fn.is_callable()) runtime_error_at("'" + fn.type_name() + "' object is not callable", call.pos);
  write(fn.as_callable().fn(args).str());
}

Value Evaluator::eval(const Expr& e, const ScopePtr& scope) {
  try {
    return eval_inner(e, scope);
  } catch (const TemplateError&) {
    throw;
  } catch (const std::exception& ex) {
    runtime_error_at(ex.what(), e.pos);
  }
}

CallArgs Evaluator::eval_args(const Expr& e, const ScopePtr& scope, size_t first) {
  CallArgs args;
  for (size_t i = first; i < e.children.size(); ++i) args.positional.push_back(eval(*e.children[i], scope));
  for (auto& [k, v] : e.kwargs) args.kwargs.emplace_back(k, eval(*v, scope));
  return args;
}

Value Evaluator::eval_inner(const Expr& e, const ScopePtr& scope) {
  switch (e.kind) {
    case ExprKind::Literal: return e.value;
    case ExprKind::Name: {
      const Value* v = scope->lookup(e.name);
      return v ? *v : Value::undefined(e.name);
    }
    case ExprKind::List:
    case ExprKind::Tuple: {
      List l;
      for (auto& c : e.children) l.push_back(eval(*c, scope));
      budget_.tick(l.size() / 16);
      return Value(std::move(l));
    }
    case ExprKind::Dict: {
      auto d = std::make_shared<Dict>();
      for (size_t i = 0; i + 1 < e.children.size(); i += 2) {
        Value k = eval(*e.children[i], scope);
        d->set(k.str(), eval(*e.children[i + 1], scope));
      }
      return Value(d);
    }
    case ExprKind::Attr: return get_attr(eval(*e.children[0], scope), e.name);
    case ExprKind::Item: return get_item(eval(*e.children[0], scope), eval(*e.children[1], scope));
    case ExprKind::Slice: {
      Value obj = eval(*e.children[0], scope);
      Value parts[3];
      for (int i = 0; i < 3; ++i)
        if (e.child(static_cast<size_t>(i) + 1)) parts[i] = eval(*e.children[static_cast<size_t>(i) + 1], scope);
      return get_slice(obj, parts[0], parts[1], parts[2]);
    }
    case ExprKind::Call: return eval_call(e, scope);
    case ExprKind::Filter: return eval_filter(e, scope, nullptr);
    case ExprKind::Test: {
      Value v = eval(*e.children[0], scope);
      CallArgs args = eval_args(e, scope, 1);
      return Value(apply_test(e.name, v, args) != e.negated);
    }
    case ExprKind::Unary: {
      Value v = eval(*e.children[0], scope);
      if (e.op == "not") return Value(!v.truthy());
      require_defined(v);
      if (v.is_int() || v.is_bool()) {
        int64_t x = v.is_bool() ? int64_t{v.as_bool()} : v.as_int();
        return Value(e.op == "-" ? -x : x);
      }
      if (v.is_double()) return Value(e.op == "-" ? -v.as_double() : v.as_double());
      throw std::runtime_error("bad operand type for unary " + e.op + ": '" + v.type_name() + "'");
    }
    case ExprKind::Binary: return eval_binary(e, scope);
    case ExprKind::Compare: return eval_compare(e, scope);
    case ExprKind::Cond:
      if (eval(*e.children[1], scope).truthy()) return eval(*e.children[0], scope);
      return e.child(2) ? eval(*e.children[2], scope) : Value::undefined();
  }
  return Value::undefined();
}

Value Evaluator::eval_call(const Expr& e, const ScopePtr& scope) {
  Value fn = eval(*e.children[0], scope);
  CallArgs args = eval_args(e, scope, 1);
  if (fn.is_undefined()) {
    std::string n = fn.undefined_name().empty() ? "function" : fn.undefined_name();
    throw std::runtime_error("'" + n + "' is undefined (not a callable)");
  }
  if (!fn.is_callable()) throw std::runtime_error("'" + fn.type_name() + "' object is not callable");
  Value r = fn.as_callable().fn(args);
  if (r.is_string()) budget_.check_size(r.as_string().size());
  return r;
}

Value Evaluator::eval_filter(const Expr& e, const ScopePtr& scope, const Value* block_input) {
  Value input = e.child(0) ? (e.children[0]->kind == ExprKind::Filter ? eval_filter(*e.children[0], scope, block_input)
                                                                      : eval(*e.children[0], scope))
                           : (block_input ? *block_input : Value::undefined());
  CallArgs args = eval_args(e, scope, 1);
  try {
    Value r = apply_filter(e.name, input, args, budget_);
    if (r.is_string()) budget_.check_size(r.as_string().size());
    return r;
  } catch (const TemplateError&) {
    throw;
  } catch (const std::exception& ex) {
    runtime_error_at(ex.what(), e.pos);
  }
}

Value Evaluator::eval_binary(const Expr& e, const ScopePtr& scope) {
  if (e.op == "and") {
    Value l = eval(*e.children[0], scope);
    return l.truthy() ? eval(*e.children[1], scope) : l;
  }
  if (e.op == "or") {
    Value l = eval(*e.children[0], scope);
    return l.truthy() ? l : eval(*e.children[1], scope);
  }
  Value l = eval(*e.children[0], scope), r = eval(*e.children[1], scope);
  if (e.op == "~") {
    std::string s = l.str() + r.str();
    budget_.check_size(s.size());
    return Value(s);
  }
  return arith(e.op, l, r);
}

Value Evaluator::arith(const std::string& op, const Value& a, const Value& b) {
  require_defined(a);
  require_defined(b);
  auto bad = [&]() -> Value {
    throw std::runtime_error("unsupported operand type(s) for " + op + ": '" + a.type_name() + "' and '" + b.type_name() + "'");
  };
  if (op == "+") {
    if (a.is_string() && b.is_string()) {
      budget_.check_size(a.as_string().size() + b.as_string().size());
      return Value(a.as_string() + b.as_string());
    }
    if (a.is_list() && b.is_list()) {
      budget_.check_size((a.as_list().size() + b.as_list().size()) * sizeof(Value));
      List l = a.as_list();
      l.insert(l.end(), b.as_list().begin(), b.as_list().end());
      return Value(std::move(l));
    }
    if (a.is_string() || b.is_string())
      throw std::runtime_error(a.is_string() ? "can only concatenate str (not \"" + b.type_name() + "\") to str"
                                             : "unsupported operand type(s) for +: '" + a.type_name() + "' and 'str'");
  }
  if (op == "*" && ((a.is_string() && b.is_int()) || (a.is_int() && b.is_string()))) {
    const std::string& s = a.is_string() ? a.as_string() : b.as_string();
    int64_t n = a.is_int() ? a.as_int() : b.as_int();
    if (n <= 0) return Value("");
    budget_.check_size(s.size() * static_cast<size_t>(n));
    std::string out;
    for (int64_t i = 0; i < n; ++i) out += s;
    return Value(out);
  }
  if (!a.is_number() || !b.is_number()) return bad();
  bool ints = !a.is_double() && !b.is_double();
  int64_t x = ints ? (a.is_bool() ? int64_t{a.as_bool()} : a.as_int()) : 0;
  int64_t y = ints ? (b.is_bool() ? int64_t{b.as_bool()} : b.as_int()) : 0;
  double dx = a.as_double(), dy = b.as_double();
  int64_t r;
  if (ints && (op == "+" || op == "-" || op == "*")) {
    bool ovf = op == "+" ? __builtin_add_overflow(x, y, &r) : op == "-" ? __builtin_sub_overflow(x, y, &r)
                                                                        : __builtin_mul_overflow(x, y, &r);
    if (ovf) throw std::runtime_error("integer overflow");
    return Value(r);
  }
  if (op == "+") return Value(dx + dy);
  if (op == "-") return Value(dx - dy);
  if (op == "*") return Value(dx * dy);
  if ((op == "/" || op == "//" || op == "%") && dy == 0) throw std::runtime_error("division by zero");
  if (op == "/") return Value(dx / dy);
  if (op == "//") {
    if (ints) return Value(x / y - ((x % y != 0) && ((x < 0) != (y < 0)) ? 1 : 0));
    return Value(std::floor(dx / dy));
  }
  if (op == "%") {
    if (ints) { int64_t m = x % y; return Value(m != 0 && ((m < 0) != (y < 0)) ? m + y : m); }
    double m = std::fmod(dx, dy);
    return Value(m != 0 && ((m < 0) != (dy < 0)) ? m + dy : m);
  }
  if (op == "**") {
    if (ints && y >= 0) {
      int64_t acc = 1, base = x;
      for (int64_t k = y; k > 0; k >>= 1) {  // square-and-multiply: O(log y) even for huge exponents
        if ((k & 1) && __builtin_mul_overflow(acc, base, &acc)) throw std::runtime_error("integer overflow");
        if (k > 1 && __builtin_mul_overflow(base, base, &base)) throw std::runtime_error("integer overflow");
      }
      return Value(acc);
    }
    return Value(std::pow(dx, dy));
  }
  return bad();
}

Value Evaluator::eval_compare(const Expr& e, const ScopePtr& scope) {
  Value left = eval(*e.children[0], scope);
  for (size_t i = 0; i < e.ops.size(); ++i) {
    Value right = eval(*e.children[i + 1], scope);
    const std::string& op = e.ops[i];
    bool r;
    if (op == "==") r = values_equal(left, right);
    else if (op == "!=") r = !values_equal(left, right);
    else if (op == "in") r = contains(right, left);
    else if (op == "not in") r = !contains(right, left);
    else {
      require_defined(left);
      require_defined(right);
      int c = values_compare(left, right);
      r = op == "<" ? c < 0 : op == "<=" ? c <= 0 : op == ">" ? c > 0 : c >= 0;
    }
    if (!r) return Value(false);
    left = std::move(right);
  }
  return Value(true);
}

}  // namespace troupe::tmpl
