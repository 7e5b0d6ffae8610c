// `troupe chat`: one question, the answer streamed as it is generated. Reasoning (delta.reasoning_content)
// is dimmed, the answer is plain; any error exits non-zero with the server's message.
#include "tools/chat/chat.hpp"

#include "tools/bench/args.hpp"
#include "tools/bench/http_client.hpp"
#include "tools/bench/setup.hpp"
#include "tools/bench/sse.hpp"

#include <unistd.h>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <future>
#include <optional>
#include <stdexcept>

namespace troupe {
namespace {

using bench::Clock;

struct ChatArgs {
  std::string prompt, base_url = "http://127.0.0.1:8000", model, color = "auto";
  std::optional<int> max_tokens;
  std::optional<double> temperature;
};

const char* kUsage =
  "usage: troupe chat \"PROMPT\" [--base-url URL] [--model M] [--max-tokens N] [--temperature T]\n"
  "                   [--color auto|always|never]\n";

ChatArgs parse(const std::vector<std::string>& args) {
  ChatArgs a;
  bool have_prompt = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& f = args[i];
    if (f.rfind("--", 0) != 0) {
      if (have_prompt) throw std::invalid_argument("one prompt only (quote it)");
      a.prompt = f, have_prompt = true;
      continue;
    }
    if (i + 1 >= args.size()) throw std::invalid_argument(f + ": expected a value");
    const std::string& v = args[++i];
    try {
      if (f == "--base-url") a.base_url = v;
      else if (f == "--model") a.model = v;
      else if (f == "--max-tokens") a.max_tokens = std::stoi(v);
      else if (f == "--temperature") a.temperature = std::stod(v);
      else if (f == "--color") a.color = v;
      else throw std::invalid_argument("unknown option '" + f + "'");
    } catch (const std::logic_error& e) {
      if (dynamic_cast<const std::invalid_argument*>(&e) && std::string(e.what()).rfind("unknown", 0) == 0) throw;
      throw std::invalid_argument(f + ": bad value '" + v + "'");
    }
  }
  if (!have_prompt) throw std::invalid_argument("a prompt is required");
  return a;
}

// Prints deltas as they come; remembers the first error the stream carried.
class Printer {
 public:
  explicit Printer(bool color) : color_(color) {}
  void feed(std::string_view bytes) {
    sse_.feed(bytes, [this](std::string&& d) { on_event(d); });
  }
  void end() {
    sse_.finish([this](std::string&& d) { on_event(d); });
    if (in_reasoning_ && color_) std::fputs("\x1b[0m", stdout);
    if (printed_) std::fputc('\n', stdout);
    std::fflush(stdout);
  }
  const std::string& error() const { return error_; }

 private:
  void on_event(const std::string& data) {
    auto c = bench::parse_stream_chunk(data, true);
    if (!c.error.empty() && error_.empty()) error_ = c.error;
    if (!c.reasoning.empty()) {
      if (!in_reasoning_ && color_) std::fputs("\x1b[2m", stdout);
      in_reasoning_ = true;
      std::fwrite(c.reasoning.data(), 1, c.reasoning.size(), stdout);
    }
    if (!c.text.empty()) {
      if (in_reasoning_) std::fputs(color_ ? "\x1b[0m\n\n" : "\n\n", stdout);
      in_reasoning_ = false;
      std::fwrite(c.text.data(), 1, c.text.size(), stdout);
    }
    printed_ |= !c.reasoning.empty() || !c.text.empty();
    std::fflush(stdout);
  }
  bench::SseParser sse_;
  bool color_, in_reasoning_ = false, printed_ = false;
  std::string error_;
};

int run_chat(const ChatArgs& a) {
  auto url = bench::parse_url(a.base_url);
  if (!url) throw std::invalid_argument("--base-url: '" + a.base_url + "' is not an http://host[:port][/path] URL");
  bench::HttpClient client(url->host, url->port, 1);
  std::string model = a.model.empty() ? bench::first_model(client, url->path).first : a.model;
  nlohmann::ordered_json body = {{"model", model},
                                 {"messages", {{{"role", "user"}, {"content", a.prompt}}}},
                                 {"stream", true}};
  if (a.max_tokens) body["max_tokens"] = *a.max_tokens;
  if (a.temperature) body["temperature"] = *a.temperature;
  bool color = a.color == "always" || (a.color == "auto" && isatty(1));
  Printer printer(color);
  std::promise<std::string> failed;  // "" on success
  auto fut = failed.get_future();
  client.request("POST", url->path + "/v1/chat/completions", body.dump(),
                 {[&](std::string_view b, Clock::time_point) { printer.feed(b); },
                  [&](int status, std::string err_body, std::string error) {
                    printer.end();
                    if (!error.empty() && status == 0) failed.set_value(error);
                    else if (status != 200) failed.set_value(bench::error_message(status, err_body));
                    else if (!printer.error().empty()) failed.set_value(printer.error());
                    else failed.set_value(error);
                  }});
  std::string err = fut.get();
  if (err.empty()) return 0;
  std::fprintf(stderr, "troupe chat: %s\n", err.c_str());
  return 1;
}

}  // namespace

int chat_main(const std::vector<std::string>& args) {
  for (auto& a : args)
    if (a == "--help" || a == "-h") return std::printf("%s", kUsage), 0;
  try {
    return run_chat(parse(args));
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "troupe chat: %s\n%s", e.what(), kUsage);
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "troupe chat: %s\n", e.what());
    return 1;
  }
}

}  // namespace troupe
