// The one exception type the engine throws. Syntax and runtime errors carry a 1-based line:column;
// errors raised by the template itself (raise_exception) carry exactly the template's message.
#pragma once

#include <stdexcept>
#include <string>

namespace troupe {

class TemplateError : public std::runtime_error {
 public:
  enum class Kind { Syntax, Runtime, Raised, Limit };

  TemplateError(Kind kind, std::string message, int line = 0, int column = 0)
      : std::runtime_error(format(message, line, column)),
        kind_(kind), message_(std::move(message)), line_(line), column_(column) {}

  Kind kind() const { return kind_; }
  const std::string& message() const { return message_; }  // without the position prefix
  int line() const { return line_; }                       // 0 when unknown
  int column() const { return column_; }

 private:
  static std::string format(const std::string& m, int line, int column) {
    if (line <= 0) return m;
    return "chat template " + std::to_string(line) + ":" + std::to_string(column) + ": " + m;
  }
  Kind kind_;
  std::string message_;
  int line_;
  int column_;
};

}  // namespace troupe
