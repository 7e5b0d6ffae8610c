#include "model/chat_template/methods.hpp"

#include <algorithm>
#include <ctime>
#include <optional>
#include <stdexcept>

#include "model/chat_template/error.hpp"
#include "model/chat_template/text.hpp"

namespace troupe::tmpl {

void Budget::tick(size_t n) {
  iterations += n;
  if (iterations > max_iterations)
    throw TemplateError(TemplateError::Kind::Limit,
                        "template exceeded the iteration limit (" + std::to_string(max_iterations) + ")");
}

void Budget::check_size(size_t bytes) const {
  if (bytes > max_bytes)
    throw TemplateError(TemplateError::Kind::Limit,
                        "template output or value exceeded the size limit (" + std::to_string(max_bytes) + " bytes)");
}

namespace {

[[noreturn]] void undefined_error(const Value& v) {
  throw std::runtime_error("'" + (v.undefined_name().empty() ? std::string("value") : v.undefined_name()) +
                           "' is undefined");
}

// Returns a copy: arguments arrive as temporaries, so a view would dangle.
std::optional<std::string> opt_str(const Value& v) {
  if (v.is_undefined() || v.is_none()) return std::nullopt;
  if (!v.is_string()) throw std::runtime_error("expected a string argument, got " + v.type_name());
  return v.as_string();
}

int64_t opt_int(const Value& v, int64_t def) {
  if (v.is_undefined() || v.is_none()) return def;
  if (!v.is_int()) throw std::runtime_error("expected an integer argument, got " + v.type_name());
  return v.as_int();
}

Value str_list(const std::vector<std::string>& parts) {
  List l;
  for (auto& p : parts) l.emplace_back(p);
  return Value(std::move(l));
}

bool affix_match(const std::string& s, const Value& arg, bool prefix) {
  auto one = [&](const Value& a) {
    if (!a.is_string()) throw std::runtime_error("startswith/endswith expects a string or tuple");
    const std::string& x = a.as_string();
    if (x.size() > s.size()) return false;
    return prefix ? s.compare(0, x.size(), x) == 0 : s.compare(s.size() - x.size(), x.size(), x) == 0;
  };
  if (arg.is_list()) {
    for (auto& a : arg.as_list())
      if (one(a)) return true;
    return false;
  }
  return one(arg);
}

// Bound methods of str. Returns Undefined when the name is not a method.
Value string_method(const std::string& s, const std::string& name) {
  auto m = [&](auto fn) { return Value::function("str." + name, [s, fn](CallArgs& a) { return fn(s, a); }); };
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    bool l = name != "rstrip", r = name != "lstrip";
    return m([l, r](const std::string& x, CallArgs& a) { auto chars = opt_str(a.get(0, "chars"));
      return Value(text::strip(x, chars ? std::optional<std::string_view>(*chars) : std::nullopt, l, r)); });
  }
  if (name == "split" || name == "rsplit") {
    bool rev = name == "rsplit";
    return m([rev](const std::string& x, CallArgs& a) {
      auto sep = opt_str(a.get(0, "sep"));
      int64_t mx = opt_int(a.get(1, "maxsplit"), -1);
      std::optional<std::string_view> sv = sep ? std::optional<std::string_view>(*sep) : std::nullopt;
      return str_list(rev ? text::rsplit(x, sv, mx) : text::split(x, sv, mx));
    });
  }
  if (name == "startswith" || name == "endswith") {
    bool pre = name == "startswith";
    return m([pre](const std::string& x, CallArgs& a) { return Value(affix_match(x, a.get(0, "prefix"), pre)); });
  }
  if (name == "replace")
    return m([](const std::string& x, CallArgs& a) {
      auto from = opt_str(a.get(0, "old")), to = opt_str(a.get(1, "new"));
      if (!from || !to) throw std::runtime_error("replace() needs two strings");
      return Value(text::replace(x, *from, *to, opt_int(a.get(2, "count"), -1)));
    });
  if (name == "lower") return m([](const std::string& x, CallArgs&) { return Value(text::lower(x)); });
  if (name == "upper") return m([](const std::string& x, CallArgs&) { return Value(text::upper(x)); });
  if (name == "title") return m([](const std::string& x, CallArgs&) { return Value(text::title(x)); });
  if (name == "capitalize") return m([](const std::string& x, CallArgs&) { return Value(text::capitalize(x)); });
  if (name == "find" || name == "rfind")
    return m([rev = name == "rfind"](const std::string& x, CallArgs& a) {
      auto sub = opt_str(a.get(0, "sub"));
      if (!sub) throw std::runtime_error("find() needs a string");
      return Value(text::find(x, *sub, rev));
    });
  if (name == "count")
    return m([](const std::string& x, CallArgs& a) {
      auto sub = opt_str(a.get(0, "sub"));
      if (!sub) throw std::runtime_error("count() needs a string");
      return Value(text::count(x, *sub));
    });
  if (name == "join")
    return m([](const std::string& x, CallArgs& a) {
      Value seq = a.get(0, "iterable");
      if (!seq.is_list()) throw std::runtime_error("join() expects a list");
      std::string out;
      for (size_t i = 0; i < seq.as_list().size(); ++i) {
        if (!seq.as_list()[i].is_string()) throw std::runtime_error("join() expects strings");
        out += (i ? x : "") + seq.as_list()[i].as_string();
      }
      return Value(out);
    });
  if (name == "splitlines")
    return m([](const std::string& x, CallArgs&) {
      auto parts = text::split(x, std::string_view("\n"), -1);
      if (!parts.empty() && parts.back().empty()) parts.pop_back();
      return str_list(parts);
    });
  if (name == "isdigit" || name == "isalpha" || name == "isspace" || name == "isalnum")
    return m([name](const std::string& x, CallArgs&) {
      if (x.empty()) return Value(false);
      for (char32_t c : text::decode(x)) {
        bool ok = name == "isdigit" ? (c >= '0' && c <= '9')
                : name == "isspace" ? text::is_space(c)
                : name == "isalpha" ? ((c | 32) >= 'a' && (c | 32) <= 'z') || c >= 0x80
                                    : ((c | 32) >= 'a' && (c | 32) <= 'z') || (c >= '0' && c <= '9') || c >= 0x80;
        if (!ok) return Value(false);
      }
      return Value(true);
    });
  return Value::undefined(name);
}

Value dict_method(const Value& d, const std::string& name) {
  if (name == "get")
    return Value::function("dict.get", [d](CallArgs& a) {
      Value key = a.get(0, "key");
      const Value* v = key.is_string() ? d.as_dict().find(key.as_string()) : nullptr;
      return v ? *v : a.get(1, "default", Value(None{}));
    });
  if (name == "items" || name == "keys" || name == "values")
    return Value::function("dict." + name, [d, name](CallArgs&) {
      List out;
      for (auto& [k, v] : d.as_dict().items) {
        if (name == "items") out.emplace_back(List{Value(k), v});
        else if (name == "keys") out.emplace_back(k);
        else out.push_back(v);
      }
      return Value(std::move(out));
    });
  return Value::undefined(name);
}

}  // namespace

Value get_attr(const Value& obj, const std::string& name) {
  if (obj.is_undefined()) undefined_error(obj);
  if (obj.is_dict()) {
    Value m = dict_method(obj, name);
    if (!m.is_undefined()) return m;
    const Value* v = obj.as_dict().find(name);
    return v ? *v : Value::undefined(name);
  }
  if (obj.is_namespace()) {
    const Value* v = obj.as_namespace().attrs.find(name);
    return v ? *v : Value::undefined(name);
  }
  if (obj.is_string()) return string_method(obj.as_string(), name);
  return Value::undefined(name);
}

Value get_item(const Value& obj, const Value& key) {
  if (obj.is_undefined()) undefined_error(obj);
  if (obj.is_dict() && key.is_string()) {
    const Value* v = obj.as_dict().find(key.as_string());
    if (v) return *v;
  }
  if ((obj.is_list() || obj.is_string()) && (key.is_int() || key.is_bool())) {
    int64_t i = key.is_bool() ? int64_t{key.as_bool()} : key.as_int();
    if (obj.is_list()) {
      int64_t n = static_cast<int64_t>(obj.as_list().size());
      if (i < 0) i += n;
      if (i >= 0 && i < n) return obj.as_list()[static_cast<size_t>(i)];
      return Value::undefined("list index " + std::to_string(i));
    }
    std::u32string u = text::decode(obj.as_string());
    int64_t n = static_cast<int64_t>(u.size());
    if (i < 0) i += n;
    if (i >= 0 && i < n) return Value(text::encode(u.substr(static_cast<size_t>(i), 1)));
    return Value::undefined("string index");
  }
  if (key.is_string()) return get_attr(obj, key.as_string());
  return Value::undefined(key.str());
}

namespace {
// Python's slice.indices(): clamps start/stop for the given length and step.
void slice_indices(int64_t n, const Value& vs, const Value& ve, int64_t step, int64_t& start, int64_t& stop) {
  auto norm = [&](const Value& v, int64_t def, bool is_start) {
    if (v.is_undefined() || v.is_none()) return def;
    if (!v.is_int()) throw std::runtime_error("slice indices must be integers or None");
    int64_t x = v.as_int();
    if (x < 0) x += n;
    if (step > 0) return std::clamp<int64_t>(x, 0, n);
    (void)is_start;
    return std::clamp<int64_t>(x, -1, n - 1);
  };
  start = norm(vs, step > 0 ? 0 : n - 1, true);
  stop = norm(ve, step > 0 ? n : -1, false);
}
}  // namespace

Value get_slice(const Value& obj, const Value& vs, const Value& ve, const Value& vstep) {
  if (obj.is_undefined()) undefined_error(obj);
  int64_t step = (vstep.is_undefined() || vstep.is_none()) ? 1 : opt_int(vstep, 1);
  if (step == 0) throw std::runtime_error("slice step cannot be zero");
  auto pick = [&](int64_t n, auto&& take) {
    int64_t start, stop;
    slice_indices(n, vs, ve, step, start, stop);
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) take(static_cast<size_t>(i));
  };
  if (obj.is_list()) {
    List out;
    const List& l = obj.as_list();
    pick(static_cast<int64_t>(l.size()), [&](size_t i) { out.push_back(l[i]); });
    return Value(std::move(out));
  }
  if (obj.is_string()) {
    std::u32string u = text::decode(obj.as_string()), out;
    pick(static_cast<int64_t>(u.size()), [&](size_t i) { out += u[i]; });
    return Value(text::encode(out));
  }
  throw std::runtime_error("'" + obj.type_name() + "' object is not subscriptable");
}

std::vector<Value> iterate(const Value& v, Budget& budget) {
  std::vector<Value> out;
  if (v.is_undefined()) return out;
  if (v.is_list()) {
    budget.tick(v.as_list().size() / 16);
    return v.as_list();
  }
  if (v.is_dict()) {
    for (auto& kv : v.as_dict().items) out.emplace_back(kv.first);
    return out;
  }
  if (v.is_string()) {
    const std::string& s = v.as_string();
    for (size_t i = 0; i < s.size();) {
      size_t st = i;
      text::decode_one(s, i);
      out.emplace_back(s.substr(st, i - st));
    }
    return out;
  }
  throw std::runtime_error("'" + v.type_name() + "' object is not iterable");
}

int64_t length_of(const Value& v) {
  if (v.is_undefined()) return 0;
  if (v.is_string()) return static_cast<int64_t>(text::length(v.as_string()));
  if (v.is_list()) return static_cast<int64_t>(v.as_list().size());
  if (v.is_dict()) return static_cast<int64_t>(v.as_dict().items.size());
  throw std::runtime_error("object of type '" + v.type_name() + "' has no len()");
}

bool contains(const Value& hay, const Value& needle) {
  if (hay.is_string()) {
    if (!needle.is_string())
      throw std::runtime_error("'in <string>' requires string as left operand, not " + needle.type_name());
    return hay.as_string().find(needle.as_string()) != std::string::npos;
  }
  if (hay.is_list()) {
    for (auto& x : hay.as_list())
      if (values_equal(x, needle)) return true;
    return false;
  }
  if (hay.is_dict()) return needle.is_string() && hay.as_dict().find(needle.as_string()) != nullptr;
  if (hay.is_undefined()) return false;
  throw std::runtime_error("argument of type '" + hay.type_name() + "' is not iterable");
}

void add_globals(Dict& g, Budget& budget) {
  g.set("range", Value::function("range", [&budget](CallArgs& a) {
    if (!a.kwargs.empty() || a.positional.empty() || a.positional.size() > 3)
      throw std::runtime_error("range() takes 1 to 3 integer arguments");
    int64_t start = 0, stop, step = 1;
    if (a.positional.size() == 1) stop = opt_int(a.positional[0], 0);
    else { start = opt_int(a.positional[0], 0); stop = opt_int(a.positional[1], 0); }
    if (a.positional.size() == 3) step = opt_int(a.positional[2], 1);
    if (step == 0) throw std::runtime_error("range() arg 3 must not be zero");
    List out;
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
      budget.tick();
      out.emplace_back(i);
    }
    return Value(std::move(out));
  }));
  g.set("dict", Value::function("dict", [](CallArgs& a) {
    auto d = std::make_shared<Dict>();
    if (!a.positional.empty()) {
      if (!a.positional[0].is_dict()) throw std::runtime_error("dict() positional argument must be a dict");
      d->items = a.positional[0].as_dict().items;
    }
    for (auto& [k, v] : a.kwargs) d->set(k, v);
    return Value(d);
  }));
  g.set("namespace", Value::function("namespace", [](CallArgs& a) {
    auto ns = std::make_shared<Namespace>();
    if (!a.positional.empty() && a.positional[0].is_dict()) ns->attrs.items = a.positional[0].as_dict().items;
    for (auto& [k, v] : a.kwargs) ns->attrs.set(k, v);
    return Value(ns);
  }));
  g.set("raise_exception", Value::function("raise_exception", [](CallArgs& a) -> Value {
    throw TemplateError(TemplateError::Kind::Raised, a.get(0, "message").str());
  }));
  g.set("strftime_now", Value::function("strftime_now", [](CallArgs& a) {
    Value fmt = a.get(0, "format");
    if (!fmt.is_string()) throw std::runtime_error("strftime_now() expects a format string");
    std::time_t t = std::time(nullptr);
    std::tm tm{};
    localtime_r(&t, &tm);
    char buf[256];
    size_t n = std::strftime(buf, sizeof buf, fmt.as_string().c_str(), &tm);
    return Value(std::string(buf, n));
  }));
}

}  // namespace troupe::tmpl
