#include "model/chat_template/parser.hpp"

#include <initializer_list>
#include <set>

#include "model/chat_template/error.hpp"

namespace troupe::tmpl {
namespace {

class Parser {
 public:
  explicit Parser(std::vector<Token> t) : toks_(std::move(t)) {}

  Body parse_template() {
    Body b = parse_body({}, Pos{});
    if (cur().kind != TokKind::Eof) fail("unexpected '" + cur().text + "'");
    return b;
  }

 private:
  // ---- token helpers ----
  const Token& cur() const { return toks_[i_]; }
  const Token& peek(size_t n = 1) const { return toks_[std::min(i_ + n, toks_.size() - 1)]; }
  Token next() { Token t = toks_[i_]; if (i_ + 1 < toks_.size()) ++i_; return t; }
  bool is_op(const char* op) const { return cur().kind == TokKind::Op && cur().text == op; }
  bool is_name(const char* n) const { return cur().kind == TokKind::Name && cur().text == n; }
  bool accept_op(const char* op) { if (is_op(op)) { next(); return true; } return false; }
  bool accept_name(const char* n) { if (is_name(n)) { next(); return true; } return false; }
  [[noreturn]] void fail(const std::string& msg, Pos p) const {
    throw TemplateError(TemplateError::Kind::Syntax, msg, p.line, p.col);
  }
  [[noreturn]] void fail(const std::string& msg) const { fail(msg, cur().pos); }
  std::string describe(const Token& t) const {
    switch (t.kind) {
      case TokKind::Eof: return "end of template";
      case TokKind::VarEnd: return "'}}'";
      case TokKind::BlockEnd: return "'%}'";
      case TokKind::Text: return "template text";
      default: return "'" + t.text + "'";
    }
  }
  void expect_op(const char* op) {
    if (!accept_op(op)) fail(std::string("expected '") + op + "', got " + describe(cur()));
  }
  std::string expect_name() {
    if (cur().kind != TokKind::Name) fail("expected a name, got " + describe(cur()));
    return next().text;
  }
  void expect_block_end() {
    if (cur().kind != TokKind::BlockEnd) fail("expected '%}', got " + describe(cur()));
    next();
  }
  struct DepthGuard {
    Parser& p;
    explicit DepthGuard(Parser& parser) : p(parser) {
      if (++p.depth_ > kMaxNesting) p.fail("template nested too deeply (limit " + std::to_string(kMaxNesting) + ")");
    }
    ~DepthGuard() { --p.depth_; }
  };

  // ---- statements ----
  // Parses until a block tag named in `stops`; leaves that name as the current token.
  Body parse_body(std::initializer_list<const char*> stops, Pos opened) {
    DepthGuard g(*this);
    Body body;
    for (;;) {
      const Token& t = cur();
      if (t.kind == TokKind::Eof) {
        if (stops.size() == 0) return body;
        std::string want;
        for (const char* s : stops) want += (want.empty() ? "'" : " or '") + std::string(s) + "'";
        fail("unexpected end of template: block opened here was never closed (expected " + want + ")", opened);
      }
      if (t.kind == TokKind::Text) {
        auto s = std::make_unique<Stmt>(StmtKind::Text, t.pos);
        s->text = next().text;
        body.push_back(std::move(s));
      } else if (t.kind == TokKind::VarBegin) {
        auto s = std::make_unique<Stmt>(StmtKind::Output, next().pos);
        s->expr = parse_tuple_or_expr();
        if (cur().kind != TokKind::VarEnd) fail("expected '}}', got " + describe(cur()));
        next();
        body.push_back(std::move(s));
      } else if (t.kind == TokKind::BlockBegin) {
        const Token& n = peek();
        if (n.kind == TokKind::Name)
          for (const char* s : stops)
            if (n.text == s) { next(); return body; }
        body.push_back(parse_statement());
      } else {
        fail("unexpected " + describe(t));
      }
    }
  }

  StmtPtr parse_statement() {
    Pos p = next().pos;  // BlockBegin
    if (cur().kind != TokKind::Name) fail("expected a tag name after '{%'");
    std::string tag = cur().text;
    if (tag == "if") return parse_if(p);
    if (tag == "for") return parse_for(p);
    if (tag == "set") return parse_set(p);
    if (tag == "macro") return parse_macro(p);
    if (tag == "call") return parse_call_block(p);
    if (tag == "filter") return parse_filter_block(p);
    if (tag == "with") return parse_with(p);
    if (tag == "generation") return parse_generation(p);
    if (tag == "break" || tag == "continue") {
      next();
      if (loop_depth_ == 0) fail("'" + tag + "' outside of a loop", p);
      expect_block_end();
      return std::make_unique<Stmt>(tag == "break" ? StmtKind::Break : StmtKind::Continue, p);
    }
    static const std::set<std::string> unsupported = {"include", "import", "from", "extends", "block",
                                                      "autoescape", "do", "trans"};
    if (unsupported.count(tag)) fail("unsupported tag '" + tag + "'");
    fail("unknown tag '" + tag + "' (is a block closed twice or misspelled?)");
  }

  void close_tag(const char* name) {
    // parse_body consumed BlockBegin and stopped at the name.
    if (!accept_name(name)) fail(std::string("expected '") + name + "'");
    expect_block_end();
  }

  StmtPtr parse_if(Pos p) {
    next();
    auto s = std::make_unique<Stmt>(StmtKind::If, p);
    s->conds.push_back(parse_tuple_or_expr());
    expect_block_end();
    for (;;) {
      s->bodies.push_back(parse_body({"elif", "else", "endif"}, p));
      std::string t = next().text;
      if (t == "elif") {
        s->conds.push_back(parse_tuple_or_expr());
        expect_block_end();
        continue;
      }
      expect_block_end();
      if (t == "else") {
        s->else_body = parse_body({"endif"}, p);
        close_tag("endif");
      }
      return s;
    }
  }

  StmtPtr parse_for(Pos p) {
    next();
    auto s = std::make_unique<Stmt>(StmtKind::For, p);
    do {
      s->targets.push_back(expect_name());
    } while (accept_op(","));
    if (!accept_name("in")) fail("expected 'in' in for loop");
    s->expr = parse_expr(/*with_condexpr=*/false);
    if (accept_name("if")) s->cond = parse_expr(true);
    if (is_name("recursive")) fail("recursive loops are not supported");
    expect_block_end();
    ++loop_depth_;
    s->body = parse_body({"else", "endfor"}, p);
    --loop_depth_;
    if (next().text == "else") {
      expect_block_end();
      s->else_body = parse_body({"endfor"}, p);
      close_tag("endfor");
    } else {
      expect_block_end();
    }
    return s;
  }

  StmtPtr parse_set(Pos p) {
    next();
    auto s = std::make_unique<Stmt>(StmtKind::Set, p);
    std::string first = expect_name();
    if (accept_op(".")) {
      s->name = first;  // namespace attribute assignment: ns.attr = value
      s->targets.push_back(expect_name());
    } else {
      s->targets.push_back(first);
      while (accept_op(",")) s->targets.push_back(expect_name());
    }
    if (accept_op("=")) {
      s->expr = parse_tuple_or_expr();
      expect_block_end();
      return s;
    }
    // Block set: {% set x %}...{% endset %}, optionally {% set x | filter %}.
    if (!s->name.empty() || s->targets.size() != 1) fail("block set needs a single variable name");
    if (is_op("|")) s->cond = parse_filter_chain(nullptr);
    expect_block_end();
    s->body = parse_body({"endset"}, p);
    close_tag("endset");
    return s;
  }

  void parse_params(std::vector<Param>& params) {
    expect_op("(");
    while (!accept_op(")")) {
      if (!params.empty()) expect_op(",");
      if (accept_op(")")) break;
      Param prm;
      prm.name = expect_name();
      if (accept_op("=")) prm.default_value = parse_expr(true);
      params.push_back(std::move(prm));
    }
  }

  StmtPtr parse_macro(Pos p) {
    next();
    auto s = std::make_unique<Stmt>(StmtKind::Macro, p);
    s->name = expect_name();
    parse_params(s->params);
    expect_block_end();
    int saved = loop_depth_;
    loop_depth_ = 0;
    s->body = parse_body({"endmacro"}, p);
    loop_depth_ = saved;
    close_tag("endmacro");
    return s;
  }

  StmtPtr parse_call_block(Pos p) {
    next();
    auto s = std::make_unique<Stmt>(StmtKind::CallBlock, p);
    if (is_op("(")) parse_params(s->params);
    s->expr = parse_expr(true);
    if (s->expr->kind != ExprKind::Call) fail("{% call %} needs a macro call", s->expr->pos);
    expect_block_end();
    s->body = parse_body({"endcall"}, p);
    close_tag("endcall");
    return s;
  }

  StmtPtr parse_filter_block(Pos p) {
    next();
    auto s = std::make_unique<Stmt>(StmtKind::FilterBlock, p);
    s->expr = parse_filter_chain(nullptr, /*leading_pipe=*/false);
    expect_block_end();
    s->body = parse_body({"endfilter"}, p);
    close_tag("endfilter");
    return s;
  }

  StmtPtr parse_with(Pos p) {
    next();
    auto s = std::make_unique<Stmt>(StmtKind::With, p);
    while (cur().kind != TokKind::BlockEnd) {
      if (!s->params.empty()) expect_op(",");
      Param prm;
      prm.name = expect_name();
      expect_op("=");
      prm.default_value = parse_expr(true);
      s->params.push_back(std::move(prm));
    }
    expect_block_end();
    s->body = parse_body({"endwith"}, p);
    close_tag("endwith");
    return s;
  }

  // transformers' AssistantTracker extension: {% generation %} only marks spans; render the body.
  StmtPtr parse_generation(Pos p) {
    next();
    expect_block_end();
    auto s = std::make_unique<Stmt>(StmtKind::With, p);
    s->body = parse_body({"endgeneration"}, p);
    close_tag("endgeneration");
    return s;
  }

  // ---- expressions ----
  ExprPtr parse_tuple_or_expr() {
    Pos p = cur().pos;
    ExprPtr e = parse_expr(true);
    if (!is_op(",")) return e;
    auto t = std::make_unique<Expr>(ExprKind::Tuple, p);
    t->children.push_back(std::move(e));
    while (accept_op(",")) {
      if (cur().kind == TokKind::VarEnd || cur().kind == TokKind::BlockEnd) break;
      t->children.push_back(parse_expr(true));
    }
    return t;
  }

  ExprPtr parse_expr(bool with_condexpr) {
    DepthGuard g(*this);
    ExprPtr e = parse_or();
    if (!with_condexpr) return e;
    while (is_name("if")) {
      Pos p = next().pos;
      auto c = std::make_unique<Expr>(ExprKind::Cond, p);
      c->children.push_back(std::move(e));
      c->children.push_back(parse_or());
      c->children.push_back(accept_name("else") ? parse_expr(true) : nullptr);
      e = std::move(c);
    }
    return e;
  }

  ExprPtr binary(const std::string& op, ExprPtr l, ExprPtr r, Pos p) {
    auto b = std::make_unique<Expr>(ExprKind::Binary, p);
    b->op = op;
    b->children.push_back(std::move(l));
    b->children.push_back(std::move(r));
    return b;
  }

  ExprPtr parse_or() {
    ExprPtr l = parse_and();
    while (is_name("or")) { Pos p = next().pos; l = binary("or", std::move(l), parse_and(), p); }
    return l;
  }
  ExprPtr parse_and() {
    ExprPtr l = parse_not();
    while (is_name("and")) { Pos p = next().pos; l = binary("and", std::move(l), parse_not(), p); }
    return l;
  }
  ExprPtr parse_not() {
    if (is_name("not")) {
      DepthGuard g(*this);
      Pos p = next().pos;
      auto u = std::make_unique<Expr>(ExprKind::Unary, p);
      u->op = "not";
      u->children.push_back(parse_not());
      return u;
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    Pos p = cur().pos;
    ExprPtr first = parse_math1();
    std::unique_ptr<Expr> cmp;
    for (;;) {
      std::string op;
      if (cur().kind == TokKind::Op && (cur().text == "==" || cur().text == "!=" || cur().text == "<" ||
                                        cur().text == "<=" || cur().text == ">" || cur().text == ">=")) {
        op = next().text;
      } else if (is_name("in")) {
        next();
        op = "in";
      } else if (is_name("not") && peek().kind == TokKind::Name && peek().text == "in") {
        next(); next();
        op = "not in";
      } else {
        break;
      }
      if (!cmp) {
        cmp = std::make_unique<Expr>(ExprKind::Compare, p);
        cmp->children.push_back(std::move(first));
      }
      cmp->ops.push_back(op);
      cmp->children.push_back(parse_math1());
    }
    return cmp ? std::move(cmp) : std::move(first);
  }

  ExprPtr parse_math1() {
    ExprPtr l = parse_concat();
    while (is_op("+") || is_op("-")) {
      Pos p = cur().pos;
      std::string op = next().text;
      l = binary(op, std::move(l), parse_concat(), p);
    }
    return l;
  }
  ExprPtr parse_concat() {
    ExprPtr l = parse_math2();
    while (is_op("~")) { Pos p = next().pos; l = binary("~", std::move(l), parse_math2(), p); }
    return l;
  }
  ExprPtr parse_math2() {
    ExprPtr l = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      Pos p = cur().pos;
      std::string op = next().text;
      l = binary(op, std::move(l), parse_pow(), p);
    }
    return l;
  }
  ExprPtr parse_pow() {
    ExprPtr l = parse_unary(true);
    while (is_op("**")) { Pos p = next().pos; l = binary("**", std::move(l), parse_unary(true), p); }
    return l;
  }

  ExprPtr parse_unary(bool with_filter) {
    DepthGuard g(*this);
    ExprPtr e;
    if (is_op("-") || is_op("+")) {
      Pos p = cur().pos;
      auto u = std::make_unique<Expr>(ExprKind::Unary, p);
      u->op = next().text;
      u->children.push_back(parse_unary(false));
      e = std::move(u);
    } else {
      e = parse_primary();
    }
    e = parse_postfix(std::move(e));
    if (with_filter) e = parse_filter_and_tests(std::move(e));
    return e;
  }

  ExprPtr parse_primary();
  ExprPtr parse_postfix(ExprPtr e);
  ExprPtr parse_filter_and_tests(ExprPtr e);
  ExprPtr parse_filter_chain(ExprPtr operand, bool leading_pipe = true);
  void parse_call_args(Expr& call);
  ExprPtr parse_subscript(ExprPtr obj, Pos p);

  std::vector<Token> toks_;
  size_t i_ = 0;
  int depth_ = 0;
  int loop_depth_ = 0;
};

ExprPtr Parser::parse_primary() {
  const Token& t = cur();
  Pos p = t.pos;
  if (t.kind == TokKind::Name) {
    std::string n = next().text;
    auto e = std::make_unique<Expr>(ExprKind::Literal, p);
    if (n == "true" || n == "True") e->value = Value(true);
    else if (n == "false" || n == "False") e->value = Value(false);
    else if (n == "none" || n == "None") e->value = Value(None{});
    else { e->kind = ExprKind::Name; e->name = n; }
    return e;
  }
  if (t.kind == TokKind::String) {
    std::string s = next().text;
    while (cur().kind == TokKind::String) s += next().text;  // adjacent literals concatenate
    auto e = std::make_unique<Expr>(ExprKind::Literal, p);
    e->value = Value(s);
    return e;
  }
  if (t.kind == TokKind::Int || t.kind == TokKind::Float) {
    auto e = std::make_unique<Expr>(ExprKind::Literal, p);
    e->value = next().number;
    return e;
  }
  if (accept_op("(")) {
    if (accept_op(")")) return std::make_unique<Expr>(ExprKind::Tuple, p);
    ExprPtr first = parse_expr(true);
    if (accept_op(")")) return first;
    auto tup = std::make_unique<Expr>(ExprKind::Tuple, p);
    tup->children.push_back(std::move(first));
    while (accept_op(",")) {
      if (is_op(")")) break;
      tup->children.push_back(parse_expr(true));
    }
    expect_op(")");
    return tup;
  }
  if (accept_op("[")) {
    auto l = std::make_unique<Expr>(ExprKind::List, p);
    while (!accept_op("]")) {
      if (!l->children.empty()) { expect_op(","); if (accept_op("]")) break; }
      l->children.push_back(parse_expr(true));
    }
    return l;
  }
  if (accept_op("{")) {
    auto d = std::make_unique<Expr>(ExprKind::Dict, p);
    while (!accept_op("}")) {
      if (!d->children.empty()) { expect_op(","); if (accept_op("}")) break; }
      d->children.push_back(parse_expr(true));
      expect_op(":");
      d->children.push_back(parse_expr(true));
    }
    return d;
  }
  fail("unexpected " + describe(t) + " in expression");
}

ExprPtr Parser::parse_postfix(ExprPtr e) {
  for (;;) {
    Pos p = cur().pos;
    if (accept_op(".")) {
      if (cur().kind == TokKind::Int) {  // foo.0 means foo[0]
        auto it = std::make_unique<Expr>(ExprKind::Item, p);
        it->children.push_back(std::move(e));
        auto lit = std::make_unique<Expr>(ExprKind::Literal, cur().pos);
        lit->value = next().number;
        it->children.push_back(std::move(lit));
        e = std::move(it);
        continue;
      }
      auto a = std::make_unique<Expr>(ExprKind::Attr, p);
      a->name = expect_name();
      a->children.push_back(std::move(e));
      e = std::move(a);
    } else if (accept_op("[")) {
      e = parse_subscript(std::move(e), p);
    } else if (is_op("(")) {
      auto c = std::make_unique<Expr>(ExprKind::Call, p);
      c->children.push_back(std::move(e));
      parse_call_args(*c);
      e = std::move(c);
    } else {
      return e;
    }
  }
}

ExprPtr Parser::parse_subscript(ExprPtr obj, Pos p) {
  ExprPtr parts[3];
  int idx = 0;
  bool is_slice = false;
  for (;;) {
    if (is_op("]")) break;
    if (accept_op(":")) {
      is_slice = true;
      if (++idx > 2) fail("too many ':' in slice");
      continue;
    }
    if (parts[idx]) fail("expected ']' or ':'");
    parts[idx] = parse_expr(true);
  }
  expect_op("]");
  auto e = std::make_unique<Expr>(is_slice ? ExprKind::Slice : ExprKind::Item, p);
  e->children.push_back(std::move(obj));
  if (!is_slice) {
    if (!parts[0]) fail("empty subscript", p);
    e->children.push_back(std::move(parts[0]));
  } else {
    for (auto& part : parts) e->children.push_back(std::move(part));
  }
  return e;
}

void Parser::parse_call_args(Expr& call) {
  expect_op("(");
  bool first = true;
  while (!accept_op(")")) {
    if (!first) { expect_op(","); if (accept_op(")")) break; }
    first = false;
    if (is_op("*") || is_op("**")) fail("*args / **kwargs in calls are not supported");
    if (cur().kind == TokKind::Name && peek().kind == TokKind::Op && peek().text == "=") {
      std::string k = next().text;
      next();
      call.kwargs.emplace_back(k, parse_expr(true));
    } else {
      if (!call.kwargs.empty()) fail("positional argument after keyword argument");
      call.children.push_back(parse_expr(true));
    }
  }
}

ExprPtr Parser::parse_filter_chain(ExprPtr operand, bool leading_pipe) {
  bool need_pipe = leading_pipe;
  do {
    if (need_pipe) expect_op("|");
    need_pipe = true;
    Pos p = cur().pos;
    auto f = std::make_unique<Expr>(ExprKind::Filter, p);
    f->name = expect_name();
    while (accept_op(".")) f->name += "." + expect_name();
    f->children.push_back(std::move(operand));
    if (is_op("(")) parse_call_args(*f);
    operand = std::move(f);
  } while (is_op("|"));
  return operand;
}

ExprPtr Parser::parse_filter_and_tests(ExprPtr e) {
  for (;;) {
    if (is_op("|")) {
      next();
      Pos p = cur().pos;
      auto f = std::make_unique<Expr>(ExprKind::Filter, p);
      f->name = expect_name();
      f->children.push_back(std::move(e));
      if (is_op("(")) parse_call_args(*f);
      e = std::move(f);
    } else if (is_name("is")) {
      Pos p = next().pos;
      auto t = std::make_unique<Expr>(ExprKind::Test, p);
      t->negated = accept_name("not");
      t->name = expect_name();
      t->children.push_back(std::move(e));
      if (is_op("(")) {
        parse_call_args(*t);
      } else {
        const Token& c = cur();
        bool starts_arg = c.kind == TokKind::String || c.kind == TokKind::Int || c.kind == TokKind::Float ||
                          (c.kind == TokKind::Name && c.text != "else" && c.text != "or" && c.text != "and" &&
                           c.text != "if" && c.text != "in" && c.text != "not" && c.text != "is") ||
                          (c.kind == TokKind::Op && (c.text == "[" || c.text == "{"));
        if (starts_arg) t->children.push_back(parse_postfix(parse_primary()));
      }
      e = std::move(t);
    } else {
      return e;
    }
  }
}

}  // namespace

Body parse(std::vector<Token> tokens) { return Parser(std::move(tokens)).parse_template(); }

}  // namespace troupe::tmpl
