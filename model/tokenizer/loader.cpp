// Reads tokenizer.json / tokenizer_config.json into a TokenizerImpl, with errors that name the file.
#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "model/tokenizer/byte_level.hpp"
#include "model/tokenizer/tokenizer.hpp"
#include "model/tokenizer/tokenizer_impl.hpp"

namespace troupe {
namespace tok {
namespace {

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("tokenizer: cannot open '" + path + "': " + std::strerror(errno));
  std::stringstream ss;
  ss << in.rdbuf();
  try {
    return nlohmann::json::parse(ss.str());
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error("tokenizer: '" + path + "' is not valid JSON: " + e.what());
  }
}

const nlohmann::json& member(const nlohmann::json& j, const char* key) {
  static const nlohmann::json null_json;
  auto it = j.find(key);
  return it == j.end() ? null_json : *it;
}

// "bos_token" in tokenizer_config.json: a string, an AddedToken object, or null.
std::optional<std::string> config_token(const nlohmann::json& cfg, const char* key) {
  const auto& v = member(cfg, key);
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content")) return v["content"].get<std::string>();
  return std::nullopt;
}

AddedToken parse_added(const nlohmann::json& a, int32_t id) {
  AddedToken t;
  t.id = id;
  t.content = a.at("content").get<std::string>();
  t.special = a.value("special", false);
  t.normalized = a.value("normalized", !t.special);
  t.lstrip = a.value("lstrip", false);
  t.rstrip = a.value("rstrip", false);
  t.single_word = a.value("single_word", false);
  return t;
}

}  // namespace

TokenizerImpl::TokenizerImpl(const nlohmann::json& tj, const nlohmann::json& cfg, const std::string& path,
                             const std::string& cfg_path)
    : normalizer(member(tj, "normalizer"), path),
      pre_tokenizer(member(tj, "pre_tokenizer"), path),
      model(tj.at("model"), pre_tokenizer.byte_level(), path),
      decoder(member(tj, "decoder"), path) {
  load_added_tokens(tj, cfg);
  vocab_size = model.max_id() + 1;
  for (const auto& t : added.tokens()) vocab_size = std::max(vocab_size, t.id + 1);
  special.assign(static_cast<size_t>(vocab_size), false);
  for (const auto& t : added.tokens()) special[static_cast<size_t>(t.id)] = t.special;
  if (auto b = config_token(cfg, "bos_token")) bos = added.find(*b) ? added.find(*b)->id : model.token_to_id(*b);
  if (auto e = config_token(cfg, "eos_token")) eos = added.find(*e) ? added.find(*e)->id : model.token_to_id(*e);
  load_post_processor(tj, cfg, path);
  if (decoder.byte_level()) {  // HF's ByteLevel decoder: byte-map each char, or raw text if one is unmapped
    decode_bytes.resize(static_cast<size_t>(vocab_size));
    for (int32_t id = 0; id < vocab_size; ++id)
      if (const std::string* t = token_text(id)) decode_bytes[size_t(id)] = byte_level_to_bytes(*t).value_or(*t);
  }
  (void)cfg_path;
}

void TokenizerImpl::load_added_tokens(const nlohmann::json& tj, const nlohmann::json& cfg) {
  for (const auto& a : member(tj, "added_tokens")) added.add(parse_added(a, a.at("id").get<int32_t>()));
  // transformers also registers tokens listed only in tokenizer_config.json.
  for (const auto& [id, a] : member(cfg, "added_tokens_decoder").items())
    if (!added.find(a.at("content").get<std::string>())) added.add(parse_added(a, std::stoi(id)));
  added.build();
}

void TokenizerImpl::load_post_processor(const nlohmann::json& tj, const nlohmann::json& cfg, const std::string& path) {
  if (cfg.contains("add_bos_token") || cfg.contains("add_eos_token")) {
    // transformers' LlamaTokenizerFast rebuilds its post-processor from these flags, overriding the file.
    if (cfg.value("add_bos_token", false) && bos) prefix_ids.push_back(*bos);
    if (cfg.value("add_eos_token", false) && eos) suffix_ids.push_back(*eos);
    return;
  }
  const nlohmann::json* p = &member(tj, "post_processor");
  if (!p->is_null() && p->at("type") == "Sequence") {
    const nlohmann::json* tp = nullptr;
    for (const auto& q : p->at("processors"))
      if (q.at("type") == "TemplateProcessing") tp = &q;
    if (tp == nullptr) return;  // e.g. ByteLevel alone: offsets only, no ids
    p = tp;
  }
  if (p->is_null() || p->at("type") == "ByteLevel") return;
  if (p->at("type") != "TemplateProcessing")
    throw std::runtime_error("tokenizer: '" + path + "': post_processor type " + p->at("type").dump() +
                             " is not supported");
  bool after_sequence = false;
  for (const auto& item : p->at("single")) {
    if (item.contains("Sequence")) {
      after_sequence = true;
      continue;
    }
    const std::string name = item.at("SpecialToken").at("id").get<std::string>();
    for (const auto& id : p->at("special_tokens").at(name).at("ids"))
      (after_sequence ? suffix_ids : prefix_ids).push_back(id.get<int32_t>());
  }
  if (!bos && !prefix_ids.empty()) bos = prefix_ids.front();
}

}  // namespace tok

Tokenizer Tokenizer::from_files(const std::string& tokenizer_json, const std::string& tokenizer_config_json) {
  nlohmann::json tj = tok::read_json(tokenizer_json);
  nlohmann::json cfg = tokenizer_config_json.empty() ? nlohmann::json::object() : tok::read_json(tokenizer_config_json);
  if (!tj.is_object() || !tj.contains("model") || !tj["model"].is_object())
    throw std::runtime_error("tokenizer: '" + tokenizer_json + "' has no \"model\" object (not a tokenizer.json?)");
  if (!cfg.is_object())
    throw std::runtime_error("tokenizer: '" + tokenizer_config_json + "' is not a JSON object");
  try {
    return Tokenizer(std::make_shared<const tok::TokenizerImpl>(tj, cfg, tokenizer_json, tokenizer_config_json));
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error("tokenizer: '" + tokenizer_json + "' has an unexpected structure: " + e.what());
  } catch (const std::runtime_error& e) {
    std::string msg = e.what();
    // Messages from the parts say "tokenizer: <path>: ..." already; add the path where they could not.
    if (msg.find(tokenizer_json) == std::string::npos) msg += " (in '" + tokenizer_json + "')";
    throw std::runtime_error(msg);
  }
}

}  // namespace troupe
