// The value model of the template engine: what a Jinja expression evaluates to.
// Lists, dicts and namespaces are shared by reference (like Python objects), because templates rely
// on aliasing: `ns.x = ...` must be seen through every name bound to the same namespace.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

namespace troupe::tmpl {

class Value;
struct CallArgs;
using List = std::vector<Value>;
struct Dict;
// A callable receives evaluated arguments; macros, globals and bound string/dict methods are callables.
using NativeFn = std::function<Value(CallArgs&)>;
struct Callable {
  std::string name;
  NativeFn fn;
};
struct Namespace;

// Jinja's default Undefined: falsy, renders as "", iterates as empty; most other uses are errors.
struct Undefined {
  std::string name;  // what was looked up, for error messages
};
struct None {};

class Value {
 public:
  using Storage = std::variant<Undefined, None, bool, int64_t, double, std::string, std::shared_ptr<List>,
                               std::shared_ptr<Dict>, std::shared_ptr<Callable>, std::shared_ptr<Namespace>>;

  Value() : v_(Undefined{}) {}
  Value(None) : v_(None{}) {}
  Value(bool b) : v_(b) {}
  Value(int v) : v_(int64_t{v}) {}
  Value(int64_t v) : v_(v) {}
  Value(double v) : v_(v) {}
  Value(std::string s) : v_(std::move(s)) {}
  Value(std::string_view s) : v_(std::string(s)) {}
  Value(const char* s) : v_(std::string(s)) {}
  Value(List l) : v_(std::make_shared<List>(std::move(l))) {}
  Value(std::shared_ptr<List> l) : v_(std::move(l)) {}
  Value(std::shared_ptr<Dict> d) : v_(std::move(d)) {}
  Value(std::shared_ptr<Callable> c) : v_(std::move(c)) {}
  Value(std::shared_ptr<Namespace> n) : v_(std::move(n)) {}
  static Value undefined(std::string name = {}) { Value v; v.v_ = Undefined{std::move(name)}; return v; }
  static Value function(std::string name, NativeFn fn);

  bool is_undefined() const { return std::holds_alternative<Undefined>(v_); }
  bool is_none() const { return std::holds_alternative<None>(v_); }
  bool is_bool() const { return std::holds_alternative<bool>(v_); }
  bool is_int() const { return std::holds_alternative<int64_t>(v_); }
  bool is_double() const { return std::holds_alternative<double>(v_); }
  bool is_number() const { return is_int() || is_double() || is_bool(); }
  bool is_string() const { return std::holds_alternative<std::string>(v_); }
  bool is_list() const { return std::holds_alternative<std::shared_ptr<List>>(v_); }
  bool is_dict() const { return std::holds_alternative<std::shared_ptr<Dict>>(v_); }
  bool is_callable() const { return std::holds_alternative<std::shared_ptr<Callable>>(v_); }
  bool is_namespace() const { return std::holds_alternative<std::shared_ptr<Namespace>>(v_); }

  bool as_bool() const { return std::get<bool>(v_); }
  int64_t as_int() const { return std::get<int64_t>(v_); }
  double as_double() const;  // any number
  const std::string& as_string() const { return std::get<std::string>(v_); }
  List& as_list() const { return *std::get<std::shared_ptr<List>>(v_); }
  Dict& as_dict() const { return *std::get<std::shared_ptr<Dict>>(v_); }
  Callable& as_callable() const { return *std::get<std::shared_ptr<Callable>>(v_); }
  Namespace& as_namespace() const { return *std::get<std::shared_ptr<Namespace>>(v_); }
  const std::string& undefined_name() const { return std::get<Undefined>(v_).name; }

  bool truthy() const;             // Python truthiness
  std::string type_name() const;   // Python-ish type name for error messages
  std::string str() const;         // Python str(): what {{ }} prints
  std::string repr() const;        // Python repr(): used inside str() of containers
  bool same_object(const Value& o) const;  // the `sameas` test

  // Both JSON flavours: ordered_json keeps the caller's key order (Python dicts do); plain
  // nlohmann::json has already sorted keys alphabetically.
  static Value from_json(const nlohmann::json& j);
  static Value from_json(const nlohmann::ordered_json& j);
  // json.dumps with HF's tojson options. Throws std::runtime_error for undefined/callables.
  std::string to_json(int indent, bool ensure_ascii, bool sort_keys) const;

 private:
  Storage v_;
};

// Insertion-ordered dict with string keys (chat template contexts come from JSON, whose keys are strings).
struct Dict {
  std::vector<std::pair<std::string, Value>> items;
  const Value* find(std::string_view key) const;
  Value* find(std::string_view key);
  void set(const std::string& key, Value v);
};

struct Namespace {
  Dict attrs;
};

struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> kwargs;
  // Positional argument i, else keyword `name`, else the default.
  Value get(size_t i, std::string_view name, Value def = Value::undefined()) const;
  bool has(size_t i, std::string_view name) const;
};

// Python semantics of == (1 == 1.0 == True) and of ordering (< on numbers, strings and lists).
bool values_equal(const Value& a, const Value& b);
// Returns <0, 0, >0; throws std::runtime_error when Python would raise TypeError.
int values_compare(const Value& a, const Value& b);

// Python's repr(float): shortest round-trip digits, exponent form outside 1e-4 <= |x| < 1e16.
std::string python_float_repr(double d);

}  // namespace troupe::tmpl
