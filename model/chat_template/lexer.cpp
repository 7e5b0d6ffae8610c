#include "model/chat_template/lexer.hpp"

#include <algorithm>
#include <cctype>
#include <regex>

#include "model/chat_template/error.hpp"
#include "model/chat_template/text.hpp"

namespace troupe::tmpl {
namespace {

bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

class Lexer {
 public:
  Lexer(std::string src, const LexOptions& o) : src_(std::move(src)), opts_(o) {
    for (size_t i = 0; i < src_.size(); ++i)
      if (src_[i] == '\n') line_starts_.push_back(i + 1);
  }

  std::vector<Token> run() {
    size_t pos = 0;
    while (pos < src_.size()) pos = lex_text_and_tag(pos);
    out_.push_back(Token{TokKind::Eof, "", {}, pos_of(src_.size())});
    return std::move(out_);
  }

 private:
  Pos pos_of(size_t off) const {
    auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), off);
    size_t line = static_cast<size_t>(it - line_starts_.begin());
    size_t col = off - line_starts_[line - 1];
    return Pos{static_cast<int>(line), static_cast<int>(text::length(std::string_view(src_).substr(line_starts_[line - 1], col))) + 1};
  }
  [[noreturn]] void fail(size_t off, const std::string& msg) const {
    Pos p = pos_of(off);
    throw TemplateError(TemplateError::Kind::Syntax, msg, p.line, p.col);
  }

  // One text run plus the tag that ends it; returns the offset after the tag.
  size_t lex_text_and_tag(size_t pos) {
    size_t m = pos;
    for (;;) {
      m = src_.find('{', m);
      if (m == std::string::npos || m + 1 >= src_.size()) { m = std::string::npos; break; }
      char c = src_[m + 1];
      if (c == '{' || c == '%' || c == '#') break;
      ++m;
    }
    bool line_starting = pos == 0 || src_[pos - 1] == '\n';
    std::string text = src_.substr(pos, m == std::string::npos ? std::string::npos : m - pos);
    if (m == std::string::npos) {
      emit_text(text, pos);
      return src_.size();
    }
    char kind = src_[m + 1];
    char marker = m + 2 < src_.size() ? src_[m + 2] : '\0';
    if (marker == '-') {
      size_t e = text.size();
      while (e > 0 && is_ws(text[e - 1])) --e;
      text.resize(e);
    } else if (marker != '+' && opts_.lstrip_blocks && kind != '{') {
      size_t l_pos = text.rfind('\n');
      l_pos = l_pos == std::string::npos ? 0 : l_pos + 1;
      if ((l_pos > 0 || line_starting) && l_pos < text.size() &&
          std::all_of(text.begin() + static_cast<long>(l_pos), text.end(), is_ws))
        text.resize(l_pos);
    }
    emit_text(text, pos);
    size_t inner = m + 2 + ((marker == '-' || marker == '+') ? 1 : 0);
    if (kind == '#') return lex_comment(m, inner);
    if (kind == '%' && is_raw(inner)) return lex_raw(m, inner);
    return lex_tag(m, inner, kind == '{');
  }

  void emit_text(const std::string& text, size_t off) {
    if (!text.empty()) out_.push_back(Token{TokKind::Text, text, {}, pos_of(off)});
  }

  // After a closing delimiter: "-" eats following whitespace, trim_blocks eats one newline.
  size_t after_close(size_t end, char marker, bool block_like) {
    if (marker == '-') {
      while (end < src_.size() && is_ws(src_[end])) ++end;
    } else if (marker != '+' && block_like && opts_.trim_blocks && end < src_.size() && src_[end] == '\n') {
      ++end;
    }
    return end;
  }

  size_t lex_comment(size_t open, size_t inner) {
    size_t close = src_.find("#}", inner);
    if (close == std::string::npos) fail(open, "unclosed comment: missing '#}'");
    char marker = close > inner && (src_[close - 1] == '-' || src_[close - 1] == '+') ? src_[close - 1] : '\0';
    return after_close(close + 2, marker, true);
  }

  bool is_raw(size_t inner) const {
    static const std::regex re(R"(^\s*raw\s*[-+]?%\})");
    return std::regex_search(src_.begin() + static_cast<long>(inner), src_.end(), re);
  }

  size_t lex_raw(size_t open, size_t inner) {
    size_t close_open = src_.find("%}", inner);
    char marker = src_[close_open - 1] == '-' || src_[close_open - 1] == '+' ? src_[close_open - 1] : '\0';
    size_t body = after_close(close_open + 2, marker, true);
    static const std::regex end_re(R"(\{%([-+]?)\s*endraw\s*([-+]?)%\})");
    std::smatch match;
    if (!std::regex_search(src_.cbegin() + static_cast<long>(body), src_.cend(), match, end_re))
      fail(open, "unclosed raw block: missing '{% endraw %}'");
    size_t end_at = body + static_cast<size_t>(match.position(0));
    std::string text = src_.substr(body, end_at - body);
    if (match[1] == "-") {
      while (!text.empty() && is_ws(text.back())) text.pop_back();
    }
    emit_text(text, body);
    std::string m2 = match[2];
    return after_close(end_at + static_cast<size_t>(match.length(0)), m2.empty() ? '\0' : m2[0], true);
  }

  size_t lex_tag(size_t open, size_t pos, bool is_var) {
    out_.push_back(Token{is_var ? TokKind::VarBegin : TokKind::BlockBegin, "", {}, pos_of(open)});
    const char closer = is_var ? '}' : '%';
    int depth = 0;
    for (;;) {
      while (pos < src_.size() && is_ws(src_[pos])) ++pos;
      if (pos >= src_.size()) fail(open, is_var ? "unclosed '{{': missing '}}'" : "unclosed '{%': missing '%}'");
      char c = src_[pos];
      if (depth == 0) {
        size_t at = pos;
        char marker = '\0';
        if ((c == '-' || c == '+') && src_.compare(pos + 1, 2, std::string{closer, '}'}) == 0) {
          marker = c;
          ++at;
        }
        if (src_.compare(at, 2, std::string{closer, '}'}) == 0) {
          out_.push_back(Token{is_var ? TokKind::VarEnd : TokKind::BlockEnd, "", {}, pos_of(at)});
          return after_close(at + 2, marker, !is_var);
        }
      }
      if (c == '(' || c == '[' || c == '{') ++depth;
      if ((c == ')' || c == ']' || c == '}') && depth > 0) --depth;
      pos = lex_one(pos);
    }
  }

  size_t lex_one(size_t pos) {
    char c = src_[pos];
    Pos p = pos_of(pos);
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      size_t e = pos;
      while (e < src_.size() && (std::isalnum(static_cast<unsigned char>(src_[e])) || src_[e] == '_')) ++e;
      out_.push_back(Token{TokKind::Name, src_.substr(pos, e - pos), {}, p});
      return e;
    }
    if (std::isdigit(static_cast<unsigned char>(c))) return lex_number(pos);
    if (c == '\'' || c == '"') return lex_string(pos);
    static const char* two[] = {"//", "**", "==", "!=", "<=", ">="};
    for (const char* op : two)
      if (src_.compare(pos, 2, op) == 0) {
        out_.push_back(Token{TokKind::Op, op, {}, p});
        return pos + 2;
      }
    if (std::string_view("+-*/%~<>=()[]{},.:|;").find(c) != std::string_view::npos) {
      out_.push_back(Token{TokKind::Op, std::string(1, c), {}, p});
      return pos + 1;
    }
    fail(pos, std::string("unexpected character '") + c + "' in tag");
  }

  size_t lex_number(size_t pos) {
    static const std::regex re(R"(^(\d+(?:_\d+)*)((?:\.\d+(?:_\d+)*)?(?:[eE][+\-]?\d+(?:_\d+)*)?))");
    std::smatch m;
    std::regex_search(src_.cbegin() + static_cast<long>(pos), src_.cend(), m, re);
    std::string s = m.str(0);
    // "1.x" is not a float: only take the fraction when digits follow the dot (the regex ensures it).
    std::string clean;
    for (char ch : s)
      if (ch != '_') clean += ch;
    Token t{TokKind::Int, s, {}, pos_of(pos)};
    if (m[2].length() > 0) {
      t.kind = TokKind::Float;
      t.number = Value(std::stod(clean));
    } else {
      try {
        t.number = Value(static_cast<int64_t>(std::stoll(clean)));
      } catch (const std::out_of_range&) {
        fail(pos, "integer literal too large");
      }
    }
    out_.push_back(std::move(t));
    return pos + s.size();
  }

  size_t lex_string(size_t pos) {
    char q = src_[pos];
    std::string out;
    size_t i = pos + 1;
    while (true) {
      if (i >= src_.size()) fail(pos, "unterminated string literal");
      char c = src_[i];
      if (c == q) break;
      if (c == '\\' && i + 1 < src_.size()) {
        i = unescape(i, out);
        continue;
      }
      out += c;
      ++i;
    }
    out_.push_back(Token{TokKind::String, out, {}, pos_of(pos)});
    return i + 1;
  }

  // Python "unicode-escape" rules, as Jinja applies them to string literals.
  size_t unescape(size_t i, std::string& out) {
    char e = src_[i + 1];
    auto hex = [&](size_t start, int n) -> size_t {
      if (start + static_cast<size_t>(n) > src_.size()) fail(i, "truncated escape in string literal");
      unsigned long v = std::stoul(src_.substr(start, static_cast<size_t>(n)), nullptr, 16);
      text::encode_one(out, static_cast<char32_t>(v));
      return start + static_cast<size_t>(n);
    };
    switch (e) {
      case 'n': out += '\n'; return i + 2;
      case 't': out += '\t'; return i + 2;
      case 'r': out += '\r'; return i + 2;
      case '\\': out += '\\'; return i + 2;
      case '\'': out += '\''; return i + 2;
      case '"': out += '"'; return i + 2;
      case 'a': out += '\a'; return i + 2;
      case 'b': out += '\b'; return i + 2;
      case 'f': out += '\f'; return i + 2;
      case 'v': out += '\v'; return i + 2;
      case '\n': return i + 2;
      case 'x': return hex(i + 2, 2);
      case 'u': return hex(i + 2, 4);
      case 'U': return hex(i + 2, 8);
      default:
        if (e >= '0' && e <= '7') {
          size_t j = i + 1;
          unsigned v = 0;
          while (j < src_.size() && j < i + 4 && src_[j] >= '0' && src_[j] <= '7') v = v * 8 + static_cast<unsigned>(src_[j++] - '0');
          text::encode_one(out, v);
          return j;
        }
        out += '\\';  // unknown escapes keep their backslash
        return i + 1;
    }
  }

  std::string src_;
  LexOptions opts_;
  std::vector<size_t> line_starts_{0};
  std::vector<Token> out_;
};

std::string normalize_newlines(std::string_view s, bool keep_trailing) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\r') {
      out += '\n';
      if (i + 1 < s.size() && s[i + 1] == '\n') ++i;
    } else {
      out += s[i];
    }
  }
  if (!keep_trailing && !out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

}  // namespace

std::vector<Token> tokenize(std::string_view source, const LexOptions& opts) {
  return Lexer(normalize_newlines(source, opts.keep_trailing_newline), opts).run();
}

}  // namespace troupe::tmpl
