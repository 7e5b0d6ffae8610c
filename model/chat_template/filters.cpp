#include "model/chat_template/filters.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <stdexcept>
#include <unordered_map>

#include "model/chat_template/text.hpp"

namespace troupe::tmpl {
namespace {

using FilterFn = std::function<Value(const Value&, const CallArgs&, Budget&)>;
using TestFn = std::function<bool(const Value&, const CallArgs&)>;

[[noreturn]] void type_error(std::string_view filter, const Value& v) {
  throw std::runtime_error("filter '" + std::string(filter) + "' cannot be applied to " + v.type_name());
}

void require_defined(std::string_view what, const Value& v) {
  if (v.is_undefined())
    throw std::runtime_error("'" + (v.undefined_name().empty() ? std::string(what) : v.undefined_name()) +
                             "' is undefined");
}

// Jinja's make_attrgetter: "a.b" walks nested attributes/items; integers index lists.
Value attr_path(const Value& v, const Value& attribute) {
  if (attribute.is_int()) return get_item(v, attribute);
  Value cur = v;
  std::string path = attribute.str();
  size_t pos = 0;
  while (true) {
    size_t dot = path.find('.', pos);
    std::string part = path.substr(pos, dot == std::string::npos ? std::string::npos : dot - pos);
    bool numeric = !part.empty() && std::all_of(part.begin(), part.end(), ::isdigit);
    cur = numeric ? get_item(cur, Value(static_cast<int64_t>(std::stoll(part)))) : get_item(cur, Value(part));
    if (dot == std::string::npos) return cur;
    pos = dot + 1;
  }
}

List as_list(const Value& v, Budget& b) { return iterate(v, b); }

// select/reject/selectattr/rejectattr share one shape: a test applied per item (or its attribute).
Value select_items(const Value& in, const CallArgs& args, Budget& b, bool by_attr, bool keep) {
  List out;
  size_t off = by_attr ? 1 : 0;
  Value attribute = by_attr ? args.get(0, "attribute") : Value();
  Value test = args.get(off, "test");
  CallArgs targs;
  for (size_t i = off + 1; i < args.positional.size(); ++i) targs.positional.push_back(args.positional[i]);
  for (const Value& item : as_list(in, b)) {
    b.tick();
    Value x = by_attr ? attr_path(item, attribute) : item;
    bool r = test.is_undefined() ? x.truthy() : apply_test(test.str(), x, targs);
    if (r == keep) out.push_back(item);
  }
  return Value(std::move(out));
}

Value map_items(const Value& in, const CallArgs& args, Budget& b) {
  List out;
  Value attribute = args.get(99, "attribute");
  if (!attribute.is_undefined() || args.positional.empty()) {
    Value def = args.get(99, "default");
    for (const Value& item : as_list(in, b)) {
      b.tick();
      Value x = attr_path(item, attribute);
      out.push_back(x.is_undefined() && !def.is_undefined() ? def : x);
    }
    return Value(std::move(out));
  }
  std::string filter = args.positional[0].str();
  CallArgs fargs;
  fargs.positional.assign(args.positional.begin() + 1, args.positional.end());
  fargs.kwargs = args.kwargs;
  for (const Value& item : as_list(in, b)) {
    b.tick();
    out.push_back(apply_filter(filter, item, fargs, b));
  }
  return Value(std::move(out));
}

Value join_filter(const Value& in, const CallArgs& args, Budget& b) {
  std::string sep = args.get(0, "d", Value("")).str();
  Value attribute = args.get(1, "attribute");
  std::string out;
  bool first = true;
  for (const Value& item : as_list(in, b)) {
    b.tick();
    if (!first) out += sep;
    first = false;
    out += (attribute.is_undefined() ? item : attr_path(item, attribute)).str();
    b.check_size(out.size());
  }
  return Value(out);
}

Value indent_filter(const Value& in, const CallArgs& args) {
  Value w = args.get(0, "width", Value(4));
  std::string pad = w.is_string() ? w.as_string() : std::string(static_cast<size_t>(std::max<int64_t>(0, w.as_int())), ' ');
  bool first = args.get(1, "first", Value(false)).truthy(), blank = args.get(2, "blank", Value(false)).truthy();
  std::string s = in.str();
  std::vector<std::string> lines = text::split(s, std::string_view("\n"), -1);
  std::string out;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i) out += "\n";
    bool indent_this = (i > 0 || first) && (blank || !text::strip(lines[i], std::nullopt, true, true).empty());
    out += (indent_this ? pad : "") + lines[i];
  }
  return Value(out);
}

Value round_filter(const Value& in, const CallArgs& args) {
  int64_t prec = args.get(0, "precision", Value(0)).as_int();
  std::string method = args.get(1, "method", Value("common")).str();
  double x = in.as_double(), f = std::pow(10.0, static_cast<double>(prec));
  double r = method == "ceil" ? std::ceil(x * f) / f : method == "floor" ? std::floor(x * f) / f : std::round(x * f) / f;
  return Value(r);
}

Value sort_filter(const Value& in, const CallArgs& args, Budget& b) {
  List items = as_list(in, b);
  bool reverse = args.get(0, "reverse", Value(false)).truthy();
  bool case_sensitive = args.get(1, "case_sensitive", Value(false)).truthy();
  Value attribute = args.get(2, "attribute");
  auto key = [&](const Value& v) {
    Value k = attribute.is_undefined() ? v : attr_path(v, attribute);
    return (!case_sensitive && k.is_string()) ? Value(text::lower(k.as_string())) : k;
  };
  b.tick(items.size());
  std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
    int c = values_compare(key(x), key(y));
    return reverse ? c > 0 : c < 0;
  });
  return Value(std::move(items));
}

Value tojson_filter(const Value& in, const CallArgs& args) {
  Value indent = args.get(1, "indent", Value(None{}));
  if (args.positional.size() == 1 && args.kwargs.empty()) indent = args.positional[0];  // tojson(4)
  Value ensure_ascii = args.get(99, "ensure_ascii", Value(false));
  Value sort_keys = args.get(99, "sort_keys", Value(false));
  int ind = indent.is_none() || indent.is_undefined() ? -1 : static_cast<int>(indent.as_int());
  return Value(in.to_json(ind, ensure_ascii.truthy(), sort_keys.truthy()));
}

const std::unordered_map<std::string_view, FilterFn>& filters() {
  static const std::unordered_map<std::string_view, FilterFn> table = {
      {"trim", [](const Value& v, const CallArgs& a, Budget&) {
         Value chars = a.get(0, "chars");
         return Value(text::strip(v.str(), chars.is_string() ? std::optional<std::string_view>(chars.as_string()) : std::nullopt, true, true));
       }},
      {"length", [](const Value& v, const CallArgs&, Budget&) { return Value(length_of(v)); }},
      {"count", [](const Value& v, const CallArgs&, Budget&) { return Value(length_of(v)); }},
      {"tojson", [](const Value& v, const CallArgs& a, Budget&) { return tojson_filter(v, a); }},
      {"string", [](const Value& v, const CallArgs&, Budget&) { return Value(v.str()); }},
      {"lower", [](const Value& v, const CallArgs&, Budget&) { return Value(text::lower(v.str())); }},
      {"upper", [](const Value& v, const CallArgs&, Budget&) { return Value(text::upper(v.str())); }},
      {"title", [](const Value& v, const CallArgs&, Budget&) { return Value(text::title(v.str())); }},
      {"capitalize", [](const Value& v, const CallArgs&, Budget&) { return Value(text::capitalize(v.str())); }},
      {"replace", [](const Value& v, const CallArgs& a, Budget& b) {
         std::string r = text::replace(v.str(), a.get(0, "old").str(), a.get(1, "new").str(),
                                       a.get(2, "count", Value(-1)).as_int());
         b.check_size(r.size());
         return Value(r);
       }},
      {"join", join_filter},
      {"first", [](const Value& v, const CallArgs&, Budget& b) {
         auto items = as_list(v, b);
         return items.empty() ? Value::undefined("first") : items.front();
       }},
      {"last", [](const Value& v, const CallArgs&, Budget& b) {
         auto items = as_list(v, b);
         return items.empty() ? Value::undefined("last") : items.back();
       }},
      {"default", [](const Value& v, const CallArgs& a, Budget&) {
         bool boolean = a.get(1, "boolean", Value(false)).truthy();
         bool use_default = v.is_undefined() || (boolean && !v.truthy());
         return use_default ? a.get(0, "default_value", Value("")) : v;
       }},
      {"items", [](const Value& v, const CallArgs&, Budget&) {
         if (v.is_undefined()) return Value(List{});
         if (!v.is_dict()) type_error("items", v);
         List out;
         for (auto& [k, x] : v.as_dict().items) out.emplace_back(List{Value(k), x});
         return Value(std::move(out));
       }},
      {"list", [](const Value& v, const CallArgs&, Budget& b) { return Value(as_list(v, b)); }},
      {"reverse", [](const Value& v, const CallArgs&, Budget& b) {
         if (v.is_string()) {
           std::u32string u = text::decode(v.as_string());
           std::reverse(u.begin(), u.end());
           return Value(text::encode(u));
         }
         List l = as_list(v, b);
         std::reverse(l.begin(), l.end());
         return Value(std::move(l));
       }},
      {"selectattr", [](const Value& v, const CallArgs& a, Budget& b) { return select_items(v, a, b, true, true); }},
      {"rejectattr", [](const Value& v, const CallArgs& a, Budget& b) { return select_items(v, a, b, true, false); }},
      {"select", [](const Value& v, const CallArgs& a, Budget& b) { return select_items(v, a, b, false, true); }},
      {"reject", [](const Value& v, const CallArgs& a, Budget& b) { return select_items(v, a, b, false, false); }},
      {"map", map_items},
      {"safe", [](const Value& v, const CallArgs&, Budget&) { return v; }},
      {"int", [](const Value& v, const CallArgs& a, Budget&) {
         Value def = a.get(0, "default", Value(0));
         if (v.is_int()) return v;
         if (v.is_bool()) return Value(int64_t{v.as_bool()});
         if (v.is_double()) return Value(static_cast<int64_t>(v.as_double()));
         if (v.is_string()) {
           try { size_t n; auto s = text::strip(v.as_string(), std::nullopt, true, true);
             double d = std::stod(s, &n); if (n == s.size()) return Value(static_cast<int64_t>(d)); } catch (...) {}
         }
         return def;
       }},
      {"float", [](const Value& v, const CallArgs& a, Budget&) {
         Value def = a.get(0, "default", Value(0.0));
         if (v.is_number()) return Value(v.as_double());
         if (v.is_string()) {
           try { size_t n; auto s = text::strip(v.as_string(), std::nullopt, true, true);
             double d = std::stod(s, &n); if (n == s.size()) return Value(d); } catch (...) {}
         }
         return def;
       }},
      {"abs", [](const Value& v, const CallArgs&, Budget&) {
         if (v.is_int()) return Value(v.as_int() < 0 ? -v.as_int() : v.as_int());
         if (v.is_number()) return Value(std::fabs(v.as_double()));
         type_error("abs", v);
       }},
      {"round", [](const Value& v, const CallArgs& a, Budget&) { return round_filter(v, a); }},
      {"indent", [](const Value& v, const CallArgs& a, Budget&) { return indent_filter(v, a); }},
      {"sort", sort_filter},
      {"unique", [](const Value& v, const CallArgs&, Budget& b) {
         List out;
         for (const Value& x : as_list(v, b)) {
           b.tick();
           if (std::none_of(out.begin(), out.end(), [&](const Value& y) { return values_equal(x, y); })) out.push_back(x);
         }
         return Value(std::move(out));
       }},
      {"sum", [](const Value& v, const CallArgs& a, Budget& b) {
         Value attribute = a.get(0, "attribute");
         Value total = a.get(1, "start", Value(0));
         for (const Value& x : as_list(v, b)) {
           Value y = attribute.is_undefined() ? x : attr_path(x, attribute);
           total = (total.is_int() && y.is_int()) ? Value(total.as_int() + y.as_int()) : Value(total.as_double() + y.as_double());
         }
         return total;
       }},
      {"min", [](const Value& v, const CallArgs&, Budget& b) {
         auto l = as_list(v, b);
         if (l.empty()) return Value::undefined("min");
         return *std::min_element(l.begin(), l.end(), [](auto& x, auto& y) { return values_compare(x, y) < 0; });
       }},
      {"max", [](const Value& v, const CallArgs&, Budget& b) {
         auto l = as_list(v, b);
         if (l.empty()) return Value::undefined("max");
         return *std::max_element(l.begin(), l.end(), [](auto& x, auto& y) { return values_compare(x, y) < 0; });
       }},
      {"attr", [](const Value& v, const CallArgs& a, Budget&) { return get_attr(v, a.get(0, "name").str()); }},
      {"wordcount", [](const Value& v, const CallArgs&, Budget&) {
         return Value(static_cast<int64_t>(text::split(v.str(), std::nullopt, -1).size()));
       }},
      {"dictsort", [](const Value& v, const CallArgs& a, Budget& b) {
         if (!v.is_dict()) type_error("dictsort", v);
         List out;
         for (auto& [k, x] : v.as_dict().items) out.emplace_back(List{Value(k), x});
         bool by_value = a.get(1, "by", Value("key")).str() == "value";
         bool reverse = a.get(2, "reverse", Value(false)).truthy();
         b.tick(out.size());
         std::stable_sort(out.begin(), out.end(), [&](const Value& x, const Value& y) {
           int c = values_compare(x.as_list()[by_value ? 1 : 0], y.as_list()[by_value ? 1 : 0]);
           return reverse ? c > 0 : c < 0;
         });
         return Value(std::move(out));
       }},
      {"escape", [](const Value& v, const CallArgs&, Budget&) {
         std::string out;
         for (char c : v.str()) {
           switch (c) {
             case '&': out += "&amp;"; break;
             case '<': out += "&lt;"; break;
             case '>': out += "&gt;"; break;
             case '"': out += "&#34;"; break;
             case '\'': out += "&#39;"; break;
             default: out += c;
           }
         }
         return Value(out);
       }},
  };
  return table;
}

bool is_int_value(const Value& v) { return v.is_int(); }

const std::unordered_map<std::string_view, TestFn>& tests() {
  auto cmp = [](auto pred) {
    return [pred](const Value& v, const CallArgs& a) { return pred(values_compare(v, a.get(0, "other")) ); };
  };
  static const std::unordered_map<std::string_view, TestFn> table = {
      {"defined", [](const Value& v, const CallArgs&) { return !v.is_undefined(); }},
      {"undefined", [](const Value& v, const CallArgs&) { return v.is_undefined(); }},
      {"none", [](const Value& v, const CallArgs&) { return v.is_none(); }},
      {"boolean", [](const Value& v, const CallArgs&) { return v.is_bool(); }},
      {"true", [](const Value& v, const CallArgs&) { return v.is_bool() && v.as_bool(); }},
      {"false", [](const Value& v, const CallArgs&) { return v.is_bool() && !v.as_bool(); }},
      {"integer", [](const Value& v, const CallArgs&) { return is_int_value(v); }},
      {"float", [](const Value& v, const CallArgs&) { return v.is_double(); }},
      {"number", [](const Value& v, const CallArgs&) { return v.is_number(); }},
      {"string", [](const Value& v, const CallArgs&) { return v.is_string(); }},
      {"mapping", [](const Value& v, const CallArgs&) { return v.is_dict(); }},
      {"sequence", [](const Value& v, const CallArgs&) { return v.is_list() || v.is_string() || v.is_dict(); }},
      {"iterable", [](const Value& v, const CallArgs&) { return v.is_list() || v.is_string() || v.is_dict() || v.is_undefined(); }},
      {"callable", [](const Value& v, const CallArgs&) { return v.is_callable(); }},
      {"sameas", [](const Value& v, const CallArgs& a) { return v.same_object(a.get(0, "other")); }},
      {"equalto", [](const Value& v, const CallArgs& a) { return values_equal(v, a.get(0, "other")); }},
      {"eq", [](const Value& v, const CallArgs& a) { return values_equal(v, a.get(0, "other")); }},
      {"==", [](const Value& v, const CallArgs& a) { return values_equal(v, a.get(0, "other")); }},
      {"ne", [](const Value& v, const CallArgs& a) { return !values_equal(v, a.get(0, "other")); }},
      {"!=", [](const Value& v, const CallArgs& a) { return !values_equal(v, a.get(0, "other")); }},
      {"lt", cmp([](int c) { return c < 0; })}, {"<", cmp([](int c) { return c < 0; })},
      {"le", cmp([](int c) { return c <= 0; })}, {"<=", cmp([](int c) { return c <= 0; })},
      {"gt", cmp([](int c) { return c > 0; })}, {">", cmp([](int c) { return c > 0; })},
      {"ge", cmp([](int c) { return c >= 0; })}, {">=", cmp([](int c) { return c >= 0; })},
      {"in", [](const Value& v, const CallArgs& a) { return contains(a.get(0, "seq"), v); }},
      {"odd", [](const Value& v, const CallArgs&) { return v.is_int() && (v.as_int() % 2 != 0); }},
      {"even", [](const Value& v, const CallArgs&) { return v.is_int() && (v.as_int() % 2 == 0); }},
      {"divisibleby", [](const Value& v, const CallArgs& a) {
         int64_t d = a.get(0, "num").as_int();
         return d != 0 && v.as_int() % d == 0;
       }},
      {"lower", [](const Value& v, const CallArgs&) { return v.is_string() && text::lower(v.as_string()) == v.as_string(); }},
      {"upper", [](const Value& v, const CallArgs&) { return v.is_string() && text::upper(v.as_string()) == v.as_string(); }},
  };
  return table;
}

}  // namespace

bool has_filter(std::string_view name) { return name == "d" || name == "e" || filters().count(name) > 0; }
bool has_test(std::string_view name) { return tests().count(name) > 0; }

Value apply_filter(std::string_view name, const Value& input, const CallArgs& args, Budget& budget) {
  if (name == "d") name = "default";
  if (name == "e") name = "escape";
  auto it = filters().find(name);
  if (it == filters().end()) throw std::runtime_error("no filter named '" + std::string(name) + "'");
  // Filters other than these treat an undefined input as an error, as Jinja's strict paths do.
  static const std::string_view lenient[] = {"default", "length", "count", "string", "list", "items", "trim",
                                             "join", "first", "last", "select", "reject", "selectattr",
                                             "rejectattr", "map", "lower", "upper", "title", "capitalize",
                                             "safe", "int", "float", "reverse", "unique", "indent", "escape",
                                             "wordcount", "replace", "sort"};
  if (input.is_undefined() && std::find(std::begin(lenient), std::end(lenient), name) == std::end(lenient))
    require_defined(name, input);
  return it->second(input, args, budget);
}

bool apply_test(std::string_view name, const Value& input, const CallArgs& args) {
  auto it = tests().find(name);
  if (it == tests().end()) throw std::runtime_error("no test named '" + std::string(name) + "'");
  return it->second(input, args);
}

}  // namespace troupe::tmpl
