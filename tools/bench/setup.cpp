#include "tools/bench/setup.hpp"

#include <sys/resource.h>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <stdexcept>

namespace troupe::bench {

using nlohmann::json;
namespace fs = std::filesystem;

void raise_open_file_limit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

std::pair<std::string, std::string> first_model(HttpClient& c, const std::string& base_path) {
  auto r = c.request_sync("GET", base_path + "/v1/models", "", 30);
  if (!r.error.empty()) throw std::runtime_error("cannot reach the server for /v1/models: " + r.error);
  if (r.status != 200) throw std::runtime_error("/v1/models answered " + error_message(r.status, r.body));
  json j = json::parse(r.body, nullptr, false);
  if (!j.is_object() || !j.contains("data") || !j["data"].is_array() || j["data"].empty() ||
      !j["data"][0].contains("id"))
    throw std::runtime_error("/v1/models lists no model");
  const json& m = j["data"][0];
  std::string root = m.contains("root") && m["root"].is_string() ? m["root"].get<std::string>() : "";
  return {m["id"].get<std::string>(), root};
}

namespace {

bool has_tokenizer(const std::string& dir) { return !dir.empty() && fs::is_regular_file(fs::path(dir) / "tokenizer.json"); }

Tokenizer load_tokenizer(const std::string& dir) {
  auto cfg = fs::path(dir) / "tokenizer_config.json";
  return Tokenizer::from_files((fs::path(dir) / "tokenizer.json").string(),
                               fs::is_regular_file(cfg) ? cfg.string() : std::string());
}

}  // namespace

Setup make_setup(const BenchArgs& a) {
  Setup s;
  if (!a.base_url.empty()) {
    auto u = parse_url(a.base_url);
    if (!u) throw std::runtime_error("--base-url: '" + a.base_url + "' is not an http://host[:port][/path] URL");
    s.url = *u;
  } else {
    if (a.port < 1 || a.port > 65535) throw std::runtime_error("--port: out of range");
    s.url = {a.host, static_cast<std::uint16_t>(a.port), ""};
  }
  s.api_target = s.url.path + a.endpoint;
  s.client = std::make_unique<HttpClient>(s.url.host, s.url.port, a.client_threads);
  std::string root;
  if (a.model.empty()) {
    std::tie(s.model_id, root) = first_model(*s.client, s.url.path);
    std::printf("First model name: %s, first model id: %s\n", s.model_id.c_str(), s.model_id.c_str());
  } else {
    s.model_id = a.model;
  }
  s.model_name = a.served_model_name.empty() ? s.model_id : a.served_model_name;
  // --tokenizer must load; otherwise the model (or the server's root for it) is used when it is a local
  // directory with a tokenizer.json, and the byte-level fallback when not.
  std::string dir = !a.tokenizer.empty() ? a.tokenizer : has_tokenizer(s.model_id) ? s.model_id
                                                       : has_tokenizer(root)       ? root
                                                                                   : "";
  if (!a.tokenizer.empty() && !has_tokenizer(dir))
    throw std::runtime_error("--tokenizer: '" + dir + "' has no tokenizer.json");
  if (!dir.empty()) {
    s.tokenizer = load_tokenizer(dir);
    s.tokenizer_id = dir;
  }
  return s;
}

std::string make_payload(bool chat, const std::string& model, const std::string& prompt, int max_tokens,
                         bool ignore_eos) {
  nlohmann::ordered_json p;
  p["model"] = model;
  if (chat) {
    p["messages"] = {{{"role", "user"}, {"content", {{{"type", "text"}, {"text", prompt}}}}}};
    p["max_completion_tokens"] = max_tokens;
  } else {
    p["prompt"] = prompt;
    p["repetition_penalty"] = 1.0;
    p["max_tokens"] = max_tokens;
    p["logprobs"] = nullptr;
  }
  p["stream"] = true;
  p["stream_options"] = {{"include_usage", true}};
  if (ignore_eos) p["ignore_eos"] = true;
  return p.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace troupe::bench
