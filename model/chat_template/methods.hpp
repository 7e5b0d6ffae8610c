// Object access with Jinja's rules (attribute vs item lookup, Undefined on a miss), the Python
// str/dict methods chat templates call, and the global functions HF exposes.
#pragma once

#include <string>
#include <vector>

#include "model/chat_template/value.hpp"

namespace troupe::tmpl {

// Resource caps for one render, shared by the evaluator and filters so a hostile template cannot
// loop forever or allocate without bound.
struct Budget {
  size_t max_iterations = 1'000'000;   // loop iterations + items touched by filters, per render
  size_t max_bytes = 64u << 20;        // output size, and the size of any string or list built
  int max_call_depth = 64;             // nested macro calls
  size_t iterations = 0;
  void tick(size_t n = 1);             // throws TemplateError(Limit)
  void check_size(size_t bytes) const; // throws TemplateError(Limit)
};

// x.name: dict keys, namespace attributes and bound methods; a miss gives Undefined.
// Throws std::runtime_error on an Undefined receiver (Jinja's UndefinedError).
Value get_attr(const Value& obj, const std::string& name);
// x[key]: items first, then attributes, as Jinja's getitem does.
Value get_item(const Value& obj, const Value& key);
// x[start:stop:step] with Python semantics on lists and (code points of) strings.
Value get_slice(const Value& obj, const Value& start, const Value& stop, const Value& step);
// What `for` iterates: list elements, dict keys, string code points; Undefined is empty.
std::vector<Value> iterate(const Value& v, Budget& budget);
// Python's len(); throws std::runtime_error for values without a length.
int64_t length_of(const Value& v);
// Python's `needle in haystack`.
bool contains(const Value& haystack, const Value& needle);

// range, dict, namespace, raise_exception, strftime_now.
void add_globals(Dict& globals, Budget& budget);

}  // namespace troupe::tmpl
