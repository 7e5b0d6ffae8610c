#include "actors/http_frontend/logprobs_format.hpp"

#include <algorithm>

namespace troupe {

using nlohmann::json;

namespace {
float clamp_lp(float lp) { return std::max(lp, -9999.0f); }  // -inf has no JSON spelling; vLLM clamps too
}  // namespace

std::string LogprobFormatter::decoded(std::int32_t id, std::int32_t prev) const {
  std::int32_t one[1] = {id};
  std::string raw = codec_->decode(one, /*skip_special_tokens=*/false);
  if (prev >= 0) {  // the piece is what `id` adds to `prev`'s text (decoders strip a leading space at the start)
    std::int32_t two[2] = {prev, id};
    std::string base = codec_->decode(std::span<const std::int32_t>(two, 1), false);
    std::string both = codec_->decode(two, false);
    if (both.compare(0, base.size(), base) == 0) raw = both.substr(base.size());
  }
  // A byte-level piece may be part of a UTF-8 sequence: Python's decode shows it as U+FFFD.
  return json::parse(json(raw).dump(-1, ' ', false, json::error_handler_t::replace)).get<std::string>();
}

std::string LogprobFormatter::shown(std::int32_t id, std::int32_t prev) const {
  return as_ids_ ? "token_id:" + std::to_string(id) : decoded(id, prev);
}

std::vector<std::pair<std::int32_t, float>> logprob_candidates(const GeneratedToken& t) {
  std::vector<std::pair<std::int32_t, float>> c;
  c.emplace_back(t.id, t.logprob.value_or(0));
  for (auto& p : t.top)
    if (p.first != t.id) c.push_back(p);
  return c;
}

std::size_t utf8_length(const std::string& s) {
  return std::size_t(std::count_if(s.begin(), s.end(), [](char ch) { return (static_cast<unsigned char>(ch) & 0xC0) != 0x80; }));
}

json utf8_bytes(const std::string& s) {
  json b = json::array();
  for (unsigned char ch : s) b.push_back(int(ch));
  return b;
}

json LogprobFormatter::completion(const std::vector<GeneratedToken>& tokens, std::int32_t num_top, std::int32_t prev,
                                  std::size_t initial_offset) const {
  json offsets = json::array(), lps = json::array(), toks = json::array(), tops = json::array();
  std::size_t offset = initial_offset;
  for (auto& t : tokens) {
    std::string tok = shown(t.id, prev);
    offsets.push_back(offset);
    offset += utf8_length(tok);
    toks.push_back(tok);
    if (!t.logprob) {
      lps.push_back(nullptr);
      tops.push_back(nullptr);
      prev = t.id;
      continue;
    }
    lps.push_back(clamp_lp(*t.logprob));
    json top = json::object();
    auto cands = logprob_candidates(t);
    for (std::size_t i = 0; i < cands.size() && std::int64_t(i) <= num_top; ++i)
      top[shown(cands[i].first, prev)] = clamp_lp(cands[i].second);  // same string twice: the later wins, as in Python
    tops.push_back(std::move(top));
    prev = t.id;
  }
  return {{"text_offset", offsets}, {"token_logprobs", lps}, {"tokens", toks}, {"top_logprobs", tops}};
}

json LogprobFormatter::chat(const std::vector<GeneratedToken>& tokens, std::int32_t num_top, std::int32_t prev) const {
  json content = json::array();
  for (auto& t : tokens) {
    std::string piece = decoded(t.id, prev);
    json entry = {{"token", shown(t.id, prev)}, {"bytes", utf8_bytes(piece)}};
    entry["logprob"] = t.logprob ? json(clamp_lp(*t.logprob)) : json(-9999.0);
    json top = json::array();
    auto cands = logprob_candidates(t);
    for (std::size_t i = 0; t.logprob && i < cands.size() && std::int64_t(i) < num_top; ++i) {
      std::string s = shown(cands[i].first, prev);
      top.push_back({{"token", s}, {"logprob", clamp_lp(cands[i].second)}, {"bytes", utf8_bytes(s)}});
    }
    entry["top_logprobs"] = std::move(top);
    content.push_back(std::move(entry));
    prev = t.id;
  }
  return {{"content", std::move(content)}};
}

json LogprobFormatter::prompt_logprobs(const std::vector<std::int32_t>& prompt,
                                      const std::vector<PromptTokenLogprob>& entries) const {
  json out = json::array();
  for (std::size_t i = 0; i < prompt.size(); ++i) {
    if (i == 0 || i - 1 >= entries.size()) {
      out.push_back(nullptr);
      continue;
    }
    const auto& e = entries[i - 1];
    json d = json::object();
    auto put = [&](std::int32_t id, float lp, std::uint32_t rank) {
      // No tokenizer (skip-tokenizer-init): vLLM leaves decoded_token None.
      json text = codec_->has_tokenizer() ? json(decoded(id, -1)) : json(nullptr);
      d[std::to_string(id)] = {{"logprob", clamp_lp(lp)}, {"rank", rank}, {"decoded_token", std::move(text)}};
    };
    put(prompt[i], e.logprob, e.rank);
    for (std::size_t k = 0; k < e.top.size(); ++k) put(e.top[k].first, e.top[k].second, std::uint32_t(k + 1));
    out.push_back(std::move(d));
  }
  return out;
}

}  // namespace troupe
