#include "model/chat_template/value.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <stdexcept>

#include "model/chat_template/text.hpp"

namespace troupe::tmpl {

Value Value::function(std::string name, NativeFn fn) {
  return Value(std::make_shared<Callable>(Callable{std::move(name), std::move(fn)}));
}

double Value::as_double() const {
  if (is_double()) return std::get<double>(v_);
  if (is_int()) return static_cast<double>(std::get<int64_t>(v_));
  if (is_bool()) return std::get<bool>(v_) ? 1.0 : 0.0;
  throw std::runtime_error("expected a number, got " + type_name());
}

bool Value::truthy() const {
  return std::visit(
      [](const auto& x) -> bool {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, Undefined> || std::is_same_v<T, None>) return false;
        else if constexpr (std::is_same_v<T, bool>) return x;
        else if constexpr (std::is_same_v<T, int64_t> || std::is_same_v<T, double>) return x != 0;
        else if constexpr (std::is_same_v<T, std::string>) return !x.empty();
        else if constexpr (std::is_same_v<T, std::shared_ptr<List>>) return !x->empty();
        else if constexpr (std::is_same_v<T, std::shared_ptr<Dict>>) return !x->items.empty();
        else return true;
      },
      v_);
}

std::string Value::type_name() const {
  static const char* names[] = {"undefined", "NoneType", "bool", "int", "float", "str", "list", "dict",
                                "function", "Namespace"};
  return names[v_.index()];
}

std::string python_float_repr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  char buf[64];
  // Shortest round-trip digits in scientific form, then lay them out the way Python's repr does.
  auto res = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string s(buf, res.ptr);
  bool neg = s[0] == '-';
  if (neg) s.erase(0, 1);
  size_t e = s.find('e');
  int exp = std::stoi(s.substr(e + 1));
  std::string digits = s.substr(0, e);
  digits.erase(std::remove(digits.begin(), digits.end(), '.'), digits.end());
  std::string out;
  if (exp < -4 || exp >= 16) {
    out = digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    char eb[16];
    snprintf(eb, sizeof eb, "e%c%02d", exp < 0 ? '-' : '+', std::abs(exp));
    out += eb;
  } else if (exp < 0) {
    out = "0." + std::string(static_cast<size_t>(-exp - 1), '0') + digits;
  } else {
    if (digits.size() <= static_cast<size_t>(exp) + 1) {
      out = digits + std::string(static_cast<size_t>(exp) + 1 - digits.size(), '0') + ".0";
    } else {
      out = digits.substr(0, static_cast<size_t>(exp) + 1) + "." + digits.substr(static_cast<size_t>(exp) + 1);
    }
  }
  return neg ? "-" + out : out;
}

namespace {
std::string repr_string(const std::string& s) {
  // Python prefers single quotes unless the string contains ' and no ".
  bool has_single = s.find('\'') != std::string::npos, has_double = s.find('"') != std::string::npos;
  char q = (has_single && !has_double) ? '"' : '\'';
  std::string out(1, q);
  for (unsigned char c : s) {
    if (c == '\\') out += "\\\\";
    else if (c == static_cast<unsigned char>(q)) { out += '\\'; out += q; }
    else if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else if (c < 0x20 || c == 0x7f) { char b[8]; snprintf(b, sizeof b, "\\x%02x", c); out += b; }
    else out += static_cast<char>(c);
  }
  return out + q;
}
}  // namespace

std::string Value::repr() const {
  if (is_string()) return repr_string(as_string());
  if (is_list()) {
    std::string out = "[";
    for (size_t i = 0; i < as_list().size(); ++i) out += (i ? ", " : "") + as_list()[i].repr();
    return out + "]";
  }
  if (is_dict()) {
    std::string out = "{";
    bool first = true;
    for (auto& [k, v] : as_dict().items) {
      out += (first ? "" : ", ") + repr_string(k) + ": " + v.repr();
      first = false;
    }
    return out + "}";
  }
  return str();
}

std::string Value::str() const {
  return std::visit(
      [this](const auto& x) -> std::string {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, Undefined>) return "";
        else if constexpr (std::is_same_v<T, None>) return "None";
        else if constexpr (std::is_same_v<T, bool>) return x ? "True" : "False";
        else if constexpr (std::is_same_v<T, int64_t>) return std::to_string(x);
        else if constexpr (std::is_same_v<T, double>) return python_float_repr(x);
        else if constexpr (std::is_same_v<T, std::string>) return x;
        else if constexpr (std::is_same_v<T, std::shared_ptr<Callable>>) return "<function " + x->name + ">";
        else if constexpr (std::is_same_v<T, std::shared_ptr<Namespace>>) return "<Namespace>";
        else return repr();
      },
      v_);
}

bool Value::same_object(const Value& o) const {
  if (v_.index() != o.v_.index()) return false;
  if (is_list()) return &as_list() == &o.as_list();
  if (is_dict()) return &as_dict() == &o.as_dict();
  if (is_namespace()) return &as_namespace() == &o.as_namespace();
  if (is_callable()) return &as_callable() == &o.as_callable();
  return values_equal(*this, o);
}

namespace {
template <class J>
Value value_from_json(const J& j) {
  switch (j.type()) {
    case J::value_t::null: return Value(None{});
    case J::value_t::boolean: return Value(j.template get<bool>());
    case J::value_t::number_integer: return Value(j.template get<int64_t>());
    case J::value_t::number_unsigned: {
      auto u = j.template get<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX)) return Value(static_cast<double>(u));
      return Value(static_cast<int64_t>(u));
    }
    case J::value_t::number_float: return Value(j.template get<double>());
    case J::value_t::string: return Value(j.template get<std::string>());
    case J::value_t::array: {
      List l;
      l.reserve(j.size());
      for (auto& e : j) l.push_back(value_from_json(e));
      return Value(std::move(l));
    }
    case J::value_t::object: {
      auto d = std::make_shared<Dict>();
      for (auto it = j.begin(); it != j.end(); ++it) d->set(it.key(), value_from_json(it.value()));
      return Value(d);
    }
    default: return Value(None{});
  }
}
}  // namespace

Value Value::from_json(const nlohmann::json& j) { return value_from_json(j); }
Value Value::from_json(const nlohmann::ordered_json& j) { return value_from_json(j); }

namespace {
void json_string(std::string& out, const std::string& s, bool ensure_ascii) {
  out += '"';
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80 && ensure_ascii) {
      char32_t cp = text::decode_one(s, i);
      auto emit = [&](unsigned u) { char b[16]; snprintf(b, sizeof b, "\\u%04x", u); out += b; };
      if (cp >= 0x10000) {
        cp -= 0x10000;
        emit(0xD800 + (cp >> 10));
        emit(0xDC00 + (cp & 0x3FF));
      } else {
        emit(cp);
      }
      continue;
    }
    ++i;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20 || (ensure_ascii && c == 0x7f)) {
          char b[16]; snprintf(b, sizeof b, "\\u%04x", c); out += b;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

// Mirrors Python's json encoder: with indent, items are separated by "," + newline; without, by ", ".
void dump(std::string& out, const Value& v, int indent, bool ensure_ascii, bool sort_keys, int level) {
  if (level > 512) throw std::runtime_error("tojson: nesting too deep");
  auto newline = [&](int lvl) {
    if (indent >= 0) { out += '\n'; out.append(static_cast<size_t>(indent * lvl), ' '); }
  };
  const char* item_sep = indent >= 0 ? "," : ", ";
  if (v.is_none()) out += "null";
  else if (v.is_bool()) out += v.as_bool() ? "true" : "false";
  else if (v.is_int()) out += std::to_string(v.as_int());
  else if (v.is_double()) {
    double d = v.as_double();
    out += std::isnan(d) ? "NaN" : std::isinf(d) ? (d > 0 ? "Infinity" : "-Infinity") : python_float_repr(d);
  } else if (v.is_string()) json_string(out, v.as_string(), ensure_ascii);
  else if (v.is_list()) {
    if (v.as_list().empty()) { out += "[]"; return; }
    out += '[';
    for (size_t i = 0; i < v.as_list().size(); ++i) {
      if (i) out += item_sep;
      newline(level + 1);
      dump(out, v.as_list()[i], indent, ensure_ascii, sort_keys, level + 1);
    }
    newline(level);
    out += ']';
  } else if (v.is_dict() || v.is_namespace()) {
    const Dict& d = v.is_dict() ? v.as_dict() : v.as_namespace().attrs;
    if (d.items.empty()) { out += "{}"; return; }
    std::vector<const std::pair<std::string, Value>*> items;
    for (auto& kv : d.items) items.push_back(&kv);
    if (sort_keys) std::stable_sort(items.begin(), items.end(), [](auto* a, auto* b) { return a->first < b->first; });
    out += '{';
    for (size_t i = 0; i < items.size(); ++i) {
      if (i) out += item_sep;
      newline(level + 1);
      json_string(out, items[i]->first, ensure_ascii);
      out += ": ";
      dump(out, items[i]->second, indent, ensure_ascii, sort_keys, level + 1);
    }
    newline(level);
    out += '}';
  } else {
    throw std::runtime_error("Object of type " + v.type_name() + " is not JSON serializable");
  }
}
}  // namespace

std::string Value::to_json(int indent, bool ensure_ascii, bool sort_keys) const {
  std::string out;
  dump(out, *this, indent, ensure_ascii, sort_keys, 0);
  return out;
}

const Value* Dict::find(std::string_view key) const {
  for (auto& kv : items)
    if (kv.first == key) return &kv.second;
  return nullptr;
}
Value* Dict::find(std::string_view key) {
  for (auto& kv : items)
    if (kv.first == key) return &kv.second;
  return nullptr;
}
void Dict::set(const std::string& key, Value v) {
  if (Value* existing = find(key)) *existing = std::move(v);
  else items.emplace_back(key, std::move(v));
}

Value CallArgs::get(size_t i, std::string_view name, Value def) const {
  if (i < positional.size()) return positional[i];
  for (auto& [k, v] : kwargs)
    if (k == name) return v;
  return def;
}
bool CallArgs::has(size_t i, std::string_view name) const {
  if (i < positional.size()) return true;
  for (auto& kv : kwargs)
    if (kv.first == name) return true;
  return false;
}

bool values_equal(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_double() || b.is_double()) return a.as_double() == b.as_double();
    auto ai = a.is_bool() ? int64_t{a.as_bool()} : a.as_int();
    auto bi = b.is_bool() ? int64_t{b.as_bool()} : b.as_int();
    return ai == bi;
  }
  if (a.is_string() && b.is_string()) return a.as_string() == b.as_string();
  if (a.is_none() && b.is_none()) return true;
  if (a.is_undefined() && b.is_undefined()) return true;
  if (a.is_list() && b.is_list()) {
    auto &x = a.as_list(), &y = b.as_list();
    if (x.size() != y.size()) return false;
    for (size_t i = 0; i < x.size(); ++i)
      if (!values_equal(x[i], y[i])) return false;
    return true;
  }
  if (a.is_dict() && b.is_dict()) {
    auto &x = a.as_dict(), &y = b.as_dict();
    if (x.items.size() != y.items.size()) return false;
    for (auto& [k, v] : x.items) {
      const Value* o = y.find(k);
      if (!o || !values_equal(v, *o)) return false;
    }
    return true;
  }
  return a.same_object(b) && (a.is_namespace() || a.is_callable());
}

int values_compare(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    double x = a.as_double(), y = b.as_double();
    if (!a.is_double() && !b.is_double()) {
      auto xi = a.is_bool() ? int64_t{a.as_bool()} : a.as_int();
      auto yi = b.is_bool() ? int64_t{b.as_bool()} : b.as_int();
      return xi < yi ? -1 : xi > yi ? 1 : 0;
    }
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (a.is_string() && b.is_string()) return a.as_string().compare(b.as_string()) < 0 ? -1 : a.as_string() == b.as_string() ? 0 : 1;
  if (a.is_list() && b.is_list()) {
    auto &x = a.as_list(), &y = b.as_list();
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (!values_equal(x[i], y[i])) return values_compare(x[i], y[i]);
    }
    return x.size() < y.size() ? -1 : x.size() > y.size() ? 1 : 0;
  }
  throw std::runtime_error("'<' not supported between instances of '" + a.type_name() + "' and '" + b.type_name() + "'");
}

}  // namespace troupe::tmpl
