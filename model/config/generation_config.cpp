#include "model/config/generation_config.hpp"

#include "model/config/model_config.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace troupe {
namespace {

using json = nlohmann::json;

[[noreturn]] void bad(const std::string& key, const std::string& want, const json& got) {
  throw ModelConfigError("generation_config.json: '" + key + "' must be " + want + ", got " + got.dump());
}

std::optional<double> number(const json& j, const std::string& key, double lo, double hi) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  if (!it->is_number() || it->get<double>() < lo || it->get<double>() > hi)
    bad(key, "a number in [" + json(lo).dump() + ", " + json(hi).dump() + "]", *it);
  return it->get<double>();
}

std::optional<std::int64_t> integer(const json& j, const std::string& key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  if (!it->is_number_integer()) bad(key, "an integer", *it);
  return it->get<std::int64_t>();
}

}  // namespace

GenerationDefaults parse_generation_config_text(const std::string& text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) throw ModelConfigError("generation_config.json: not a JSON object");
  GenerationDefaults d;
  // vLLM takes GenerationConfig.to_diff_dict(): a value equal to transformers' own default is not a
  // default of the model. That matters for top_k, whose transformers default is 50 (vLLM's is off).
  auto differs = [](std::optional<double> v, double hf_default) { return v && *v != hf_default ? v : std::nullopt; };
  if (auto v = differs(number(j, "temperature", 0, 100), 1.0)) d.temperature = float(*v);
  if (auto v = differs(number(j, "top_p", 1e-9, 1), 1.0)) d.top_p = float(*v);
  if (auto v = number(j, "min_p", 0, 1)) d.min_p = float(*v);
  if (auto v = differs(number(j, "repetition_penalty", 1e-6, 100), 1.0)) d.repetition_penalty = float(*v);
  if (auto v = integer(j, "top_k"); v && *v != 50) d.top_k = *v <= 0 ? -1 : std::int32_t(std::min<std::int64_t>(*v, INT32_MAX));
  if (auto v = integer(j, "max_new_tokens")) {
    if (*v < 1) bad("max_new_tokens", "at least 1", j["max_new_tokens"]);
    d.max_new_tokens = std::uint32_t(std::min<std::int64_t>(*v, INT32_MAX));
  }
  return d;
}

GenerationDefaults load_generation_config(const std::string& model_dir) {
  if (model_dir.empty()) return {};
  auto path = std::filesystem::path(model_dir) / "generation_config.json";
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return {};
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  try {
    return parse_generation_config_text(ss.str());
  } catch (const ModelConfigError& e) {
    throw ModelConfigError(path.string() + ": " + std::string(e.what()).substr(sizeof("generation_config.json: ") - 1));
  }
}

std::string GenerationDefaults::describe() const {
  std::ostringstream s;
  auto add = [&](const char* k, auto v) {
    if (v) s << (s.tellp() > 0 ? ", " : "") << k << "=" << *v;
  };
  add("temperature", temperature);
  add("top_p", top_p);
  add("top_k", top_k);
  add("min_p", min_p);
  add("repetition_penalty", repetition_penalty);
  add("max_new_tokens", max_new_tokens);
  return s.str();
}

}  // namespace troupe
