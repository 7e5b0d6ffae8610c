#include "model/chat_template/chat_template.hpp"

#include <fstream>
#include <sstream>

#include "model/chat_template/evaluator.hpp"
#include "model/chat_template/filters.hpp"
#include "model/chat_template/lexer.hpp"
#include "model/chat_template/parser.hpp"

namespace troupe {

namespace tmpl {
struct CompiledTemplate {
  std::string source;
  Body body;
};
}  // namespace tmpl

namespace {
using namespace tmpl;

[[noreturn]] void syntax_error(const std::string& msg, Pos p) {
  throw TemplateError(TemplateError::Kind::Syntax, msg, p.line, p.col);
}

// Jinja rejects unknown filters and tests when it compiles; do the same so a typo fails at load time.
void check_expr(const Expr* e) {
  if (!e) return;
  if (e->kind == ExprKind::Filter && !has_filter(e->name)) syntax_error("no filter named '" + e->name + "'", e->pos);
  if (e->kind == ExprKind::Test && !has_test(e->name)) syntax_error("no test named '" + e->name + "'", e->pos);
  for (auto& c : e->children) check_expr(c.get());
  for (auto& kv : e->kwargs) check_expr(kv.second.get());
}

void check_body(const Body& body) {
  for (auto& s : body) {
    check_expr(s->expr.get());
    check_expr(s->cond.get());
    for (auto& c : s->conds) check_expr(c.get());
    for (auto& b : s->bodies) check_body(b);
    for (auto& p : s->params) check_expr(p.default_value.get());
    check_body(s->body);
    check_body(s->else_body);
  }
}

std::string token_text(const nlohmann::json& j) {
  if (j.is_string()) return j.get<std::string>();
  if (j.is_object() && j.contains("content") && j["content"].is_string()) return j["content"].get<std::string>();
  return {};
}
}  // namespace

ChatTemplate ChatTemplate::compile(std::string_view source) {
  auto impl = std::make_shared<CompiledTemplate>();
  impl->source = std::string(source);
  impl->body = parse(tokenize(source));
  check_body(impl->body);
  ChatTemplate t;
  t.impl_ = std::move(impl);
  return t;
}

ChatTemplate ChatTemplate::from_tokenizer_config(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw TemplateError(TemplateError::Kind::Syntax, "cannot open tokenizer config '" + path + "'");
  std::stringstream ss;
  ss << in.rdbuf();
  nlohmann::json cfg = nlohmann::json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
  if (cfg.is_discarded() || !cfg.is_object())
    throw TemplateError(TemplateError::Kind::Syntax, "tokenizer config '" + path + "' is not a JSON object");
  const auto it = cfg.find("chat_template");
  std::string source;
  if (it != cfg.end() && it->is_string()) {
    source = it->get<std::string>();
  } else if (it != cfg.end() && it->is_array()) {
    for (auto& entry : *it)
      if (entry.is_object() && entry.value("name", "") == "default" && entry.contains("template") &&
          entry["template"].is_string())
        source = entry["template"].get<std::string>();
  }
  if (source.empty())
    throw TemplateError(TemplateError::Kind::Syntax, "tokenizer config '" + path + "' has no (default) chat_template");
  ChatTemplate t = compile(source);
  if (cfg.contains("bos_token")) { t.bos_token_ = token_text(cfg["bos_token"]); t.has_bos_ = !cfg["bos_token"].is_null(); }
  if (cfg.contains("eos_token")) { t.eos_token_ = token_text(cfg["eos_token"]); t.has_eos_ = !cfg["eos_token"].is_null(); }
  return t;
}

std::string ChatTemplate::render(const nlohmann::json& context) const {
  if (!context.is_object()) throw TemplateError(TemplateError::Kind::Runtime, "render() context must be a JSON object");
  return render_value(Value::from_json(context));
}

std::string ChatTemplate::render(const nlohmann::ordered_json& context) const {
  if (!context.is_object()) throw TemplateError(TemplateError::Kind::Runtime, "render() context must be a JSON object");
  return render_value(Value::from_json(context));
}

std::string ChatTemplate::render_value(Value ctx) const {
  if (!impl_) throw TemplateError(TemplateError::Kind::Runtime, "render() on an empty ChatTemplate");
  Dict& vars = ctx.as_dict();
  if (has_bos_ && !vars.find("bos_token")) vars.set("bos_token", Value(bos_token_));
  if (has_eos_ && !vars.find("eos_token")) vars.set("eos_token", Value(eos_token_));
  Evaluator ev{Budget{}};
  try {
    return ev.render(impl_->body, vars);
  } catch (const TemplateError&) {
    throw;
  } catch (const std::bad_alloc&) {
    throw TemplateError(TemplateError::Kind::Limit, "out of memory while rendering the chat template");
  } catch (const std::exception& e) {
    throw TemplateError(TemplateError::Kind::Runtime, e.what());
  }
}

const std::string& ChatTemplate::source() const {
  static const std::string empty;
  return impl_ ? impl_->source : empty;
}

}  // namespace troupe
