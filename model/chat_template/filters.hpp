// Jinja's built-in filters and tests that chat templates use, with HF's tojson.
#pragma once

#include <string_view>

#include "model/chat_template/methods.hpp"
#include "model/chat_template/value.hpp"

namespace troupe::tmpl {

bool has_filter(std::string_view name);
bool has_test(std::string_view name);
// Throw std::runtime_error (positioned by the caller) on bad arguments or types.
Value apply_filter(std::string_view name, const Value& input, const CallArgs& args, Budget& budget);
bool apply_test(std::string_view name, const Value& input, const CallArgs& args);

}  // namespace troupe::tmpl
