// Golden-data and behaviour tests of troupe_tokenizer. Golden encodings come from HF `tokenizers`
// (tests/data/tokenizer/make_golden.py).
#define BOOST_TEST_MODULE tokenizer_test
#include <boost/test/unit_test.hpp>

#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "model/tokenizer/incremental_detokenizer.hpp"
#include "model/tokenizer/tokenizer.hpp"
#include "model/tokenizer/utf8.hpp"

using troupe::IncrementalDetokenizer;
using troupe::Tokenizer;

namespace {

const std::string kData = std::string(TROUPE_SOURCE_DIR) + "/tests/data/tokenizer/";

// Loaded once per process: the DeepSeek vocabulary takes a moment to parse.
const Tokenizer& load(const std::string& folder) {
  static std::map<std::string, Tokenizer> cache;
  auto it = cache.find(folder);
  if (it == cache.end()) {
    std::string d = kData + folder + "/";
    it = cache.emplace(folder, Tokenizer::from_files(d + "tokenizer.json", d + "tokenizer_config.json")).first;
  }
  return it->second;
}

struct Case {
  std::string text;
  bool add_special = false;
  std::vector<int32_t> ids;
  std::optional<std::string> decoded, decoded_skip;
};

std::vector<Case> golden(const std::string& name) {
  std::ifstream in(kData + "golden/" + name + ".jsonl");
  BOOST_REQUIRE_MESSAGE(in, "missing golden file " << name);
  std::vector<Case> cases;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line);
    Case c{j.at("text"), j.value("add_special_tokens", false), j.at("ids").get<std::vector<int32_t>>(), {}, {}};
    if (j.contains("decoded")) c.decoded = j["decoded"].get<std::string>();
    if (j.contains("decoded_skip")) c.decoded_skip = j["decoded_skip"].get<std::string>();
    cases.push_back(std::move(c));
  }
  return cases;
}

std::string show(const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) s += std::to_string(id) + " ";
  return s;
}

void check_golden(const std::string& folder, const std::string& name, size_t min_cases) {
  const Tokenizer& tok = load(folder);
  auto cases = golden(name);
  BOOST_REQUIRE_GE(cases.size(), min_cases);
  size_t failures = 0;
  for (const auto& c : cases) {
    auto ids = tok.encode(c.text, c.add_special);
    if (ids != c.ids && ++failures <= 10)
      BOOST_ERROR(name << ": encode(\"" << c.text << "\", " << c.add_special << ")\n got  " << show(ids)
                       << "\n want " << show(c.ids));
    if (c.decoded && tok.decode(c.ids, false) != *c.decoded && ++failures <= 10)
      BOOST_ERROR(name << ": decode(" << show(c.ids) << ") = \"" << tok.decode(c.ids, false) << "\" want \""
                       << *c.decoded << "\"");
    if (c.decoded_skip && tok.decode(c.ids, true) != *c.decoded_skip && ++failures <= 10)
      BOOST_ERROR(name << ": decode skip(" << show(c.ids) << ") = \"" << tok.decode(c.ids, true) << "\"");
  }
  BOOST_CHECK_EQUAL(failures, 0u);
}

// Every prefix of `ids`: streamed pieces are valid UTF-8 and concatenate to the full decode.
void check_incremental(const Tokenizer& tok, const std::vector<int32_t>& ids, bool skip) {
  for (size_t n = 0; n <= ids.size(); ++n) {
    IncrementalDetokenizer detok(tok, skip);
    std::string streamed;
    for (size_t i = 0; i < n; ++i) {
      std::string piece = detok.step(ids[i]);
      BOOST_REQUIRE_MESSAGE(troupe::tok::is_valid_utf8(piece), "invalid UTF-8 piece after " << i + 1 << " ids");
      streamed += piece;
    }
    std::string rest = detok.flush();
    BOOST_REQUIRE(troupe::tok::is_valid_utf8(rest));
    streamed += rest;
    BOOST_REQUIRE_EQUAL(streamed, tok.decode(std::span(ids.data(), n), skip));
  }
}

std::string write_temp(const std::string& name, const std::string& content) {
  std::string path = "/tmp/troupe_tokenizer_test_" + name;
  std::ofstream(path) << content;
  return path;
}

std::string load_error(const std::string& json_path, const std::string& cfg_path = "") {
  try {
    Tokenizer::from_files(json_path, cfg_path);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

BOOST_AUTO_TEST_CASE(deepseek_r1_golden) { check_golden("deepseek-r1", "deepseek_r1", 400); }
BOOST_AUTO_TEST_CASE(deepseek_r1_shared_golden) { check_golden("deepseek-r1", "deepseek_r1_shared", 10); }
BOOST_AUTO_TEST_CASE(llama2_sentencepiece_golden) { check_golden("llama2-sp", "llama2_sp", 400); }
BOOST_AUTO_TEST_CASE(llama2_metaspace_golden) { check_golden("llama2-metaspace", "llama2_metaspace", 400); }
BOOST_AUTO_TEST_CASE(qwen2_golden) { check_golden("qwen2-bpe", "qwen2_bpe", 400); }
BOOST_AUTO_TEST_CASE(llama3_golden) { check_golden("llama3-bpe", "llama3_bpe", 400); }

BOOST_AUTO_TEST_CASE(deepseek_roundtrip) {
  const Tokenizer& tok = load("deepseek-r1");
  for (const auto& c : golden("deepseek_r1")) {
    if (c.add_special) continue;
    BOOST_CHECK_EQUAL(tok.decode(tok.encode(c.text, false), false), c.text);
  }
}

BOOST_AUTO_TEST_CASE(deepseek_special_tokens) {
  const Tokenizer& tok = load("deepseek-r1");
  BOOST_CHECK_EQUAL(tok.bos_id().value(), 0);
  BOOST_CHECK_EQUAL(tok.eos_id().value(), 1);
  BOOST_CHECK(tok.is_special(0));
  BOOST_CHECK(!tok.is_special(*tok.token_to_id("<think>")));  // <think> is added but not special
  BOOST_CHECK_EQUAL(tok.vocab_size(), 128815);
  BOOST_CHECK_EQUAL(tok.id_to_token(*tok.token_to_id("<｜User｜>")), "<｜User｜>");
  BOOST_CHECK_EQUAL(tok.id_to_token(19923), "Hello");
  BOOST_CHECK_EQUAL(tok.id_to_token(-5), "");
  auto ids = tok.encode("<｜User｜>Hi<｜Assistant｜><think>ok</think>yes<｜end▁of▁sentence｜>", true);
  BOOST_CHECK_EQUAL(ids.front(), 0);  // add_bos_token
  // <｜User｜> and <｜Assistant｜> are added but not special in R1's tokenizer.json: only bos/eos go.
  BOOST_CHECK(!tok.is_special(*tok.token_to_id("<｜User｜>")));
  BOOST_CHECK_EQUAL(tok.decode(ids, true), "<｜User｜>Hi<｜Assistant｜><think>ok</think>yes");
  BOOST_CHECK_EQUAL(tok.decode(ids, false),
                    "<｜begin▁of▁sentence｜><｜User｜>Hi<｜Assistant｜><think>ok</think>yes<｜end▁of▁sentence｜>");
}

BOOST_AUTO_TEST_CASE(incremental_matches_full_decode) {
  const std::vector<std::string> texts = {
      "emoji 😀👍🏽 done 👨‍👩‍👧‍👦", "中文测试，你好世界。日本語のひらがな", "<｜User｜>Hi<think>\nok</think>é",
      "Привет, мир! Γειά σου 🇺🇸 नमस्ते", "def f(x):\n    return x**2\n"};
  for (const char* folder : {"deepseek-r1", "llama2-sp", "llama2-metaspace", "qwen2-bpe", "llama3-bpe"}) {
    const Tokenizer& tok = load(folder);
    for (const auto& t : texts)
      for (bool skip : {false, true}) check_incremental(tok, tok.encode(t, true), skip);
  }
  // Token sequences a model might produce that split characters or never finish them.
  const Tokenizer& ds = load("deepseek-r1");
  std::vector<int32_t> bytes;  // single-byte tokens of "😀" and "中", then a lone lead byte
  for (unsigned char b : std::string("😀中\xE4")) bytes.push_back(ds.encode(std::string(1, char(b)), false).at(0));
  check_incremental(ds, bytes, false);
  const Tokenizer& sp = load("llama2-sp");
  std::vector<int32_t> fallback = {*sp.token_to_id("<0xE4>"), *sp.token_to_id("<0xB8>"), *sp.token_to_id("<0xAD>"),
                                   *sp.token_to_id("<0xFF>"), *sp.token_to_id("<0x41>"), 1, 2};
  check_incremental(sp, fallback, false);
  check_incremental(sp, fallback, true);
}

// A stream primed with the prompt streams what vLLM's FastIncrementalDetokenizer streams (HF DecodeStream,
// golden/*_prompted_stream.jsonl from make_stream_golden.py): a SentencePiece "▁" that starts the output is a
// space after prompt text. Cases where vLLM reset its stream mid-output (its error recovery) are skipped.
void check_prompted_stream(const std::string& folder, const std::string& name) {
  const Tokenizer& tok = load(folder);
  std::ifstream in(kData + "golden/" + name + "_prompted_stream.jsonl");
  BOOST_REQUIRE_MESSAGE(in, "missing golden file " << name << "_prompted_stream.jsonl");
  size_t checked = 0, failures = 0;
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line);
    if (j.value("vllm_reset", false)) continue;
    auto prompt = j.at("prompt_ids").get<std::vector<int32_t>>();
    auto output = j.at("output_ids").get<std::vector<int32_t>>();
    IncrementalDetokenizer detok(tok, j.at("skip_special_tokens").get<bool>());
    detok.prime(prompt);
    std::string text;
    for (int32_t id : output) text += detok.step(id);
    text += detok.flush();
    ++checked;
    if (text != j.at("text").get<std::string>() && ++failures <= 10)
      BOOST_ERROR(name << ": prompt " << show(prompt) << "output " << show(output) << "streamed \"" << text
                       << "\" want \"" << j.at("text").get<std::string>() << "\"");
  }
  BOOST_CHECK_GE(checked, 270u);
  BOOST_CHECK_EQUAL(failures, 0u);
}

BOOST_AUTO_TEST_CASE(prompted_stream_matches_vllm) {
  check_prompted_stream("llama2-sp", "llama2_sp");
  check_prompted_stream("llama2-metaspace", "llama2_metaspace");
  check_prompted_stream("qwen2-bpe", "qwen2_bpe");
  check_prompted_stream("llama3-bpe", "llama3_bpe");
  check_prompted_stream("deepseek-r1", "deepseek_r1");
}

BOOST_AUTO_TEST_CASE(invalid_utf8_input_is_read_lossily) {
  const Tokenizer& tok = load("deepseek-r1");
  BOOST_CHECK(tok.encode("a\xFF" "b", false) == tok.encode("a\xEF\xBF\xBD" "b", false));
}

BOOST_AUTO_TEST_CASE(load_errors_name_file_and_problem) {
  std::string e = load_error("/nonexistent/tokenizer.json");
  BOOST_CHECK_MESSAGE(e.find("/nonexistent/tokenizer.json") != std::string::npos && e.find("cannot open") != std::string::npos, e);
  std::string bad = write_temp("bad.json", "{\"model\": [1, 2");
  e = load_error(bad);
  BOOST_CHECK_MESSAGE(e.find(bad) != std::string::npos && e.find("not valid JSON") != std::string::npos, e);
  std::string wp = write_temp("wp.json", R"({"model": {"type": "WordPiece", "vocab": {"a": 0}}})");
  e = load_error(wp);
  BOOST_CHECK_MESSAGE(e.find(wp) != std::string::npos && e.find("WordPiece") != std::string::npos, e);
  std::string uni = write_temp("uni.json", R"({"model": {"type": "Unigram", "vocab": [["a", 0.0]]}})");
  e = load_error(uni);
  BOOST_CHECK_MESSAGE(e.find("Unigram") != std::string::npos && e.find("not supported") != std::string::npos, e);
  std::string pre = write_temp("pre.json", R"({"pre_tokenizer": {"type": "BertPreTokenizer"},
      "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}})");
  e = load_error(pre);
  BOOST_CHECK_MESSAGE(e.find("BertPreTokenizer") != std::string::npos && e.find(pre) != std::string::npos, e);
  std::string nomodel = write_temp("nomodel.json", "{}");
  e = load_error(nomodel);
  BOOST_CHECK_MESSAGE(e.find("model") != std::string::npos && e.find(nomodel) != std::string::npos, e);
  std::string good = kData + "llama2-sp/tokenizer.json";
  e = load_error(good, "/nonexistent/tokenizer_config.json");
  BOOST_CHECK_MESSAGE(e.find("/nonexistent/tokenizer_config.json") != std::string::npos, e);
}

BOOST_AUTO_TEST_CASE(loads_without_config) {
  Tokenizer tok = Tokenizer::from_files(kData + "llama2-sp/tokenizer.json", "");
  BOOST_CHECK_EQUAL(tok.bos_id().value(), 1);  // from the post_processor template
  BOOST_CHECK_EQUAL(tok.encode("hi", true).front(), 1);
}

BOOST_AUTO_TEST_CASE(concurrent_encode_matches_golden) {
  const Tokenizer& tok = load("deepseek-r1");
  auto cases = golden("deepseek_r1");
  std::vector<size_t> failures(4, 0);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < failures.size(); ++t)
    threads.emplace_back([&, t] {
      for (int round = 0; round < 3; ++round)
        for (const auto& c : cases) failures[t] += tok.encode(c.text, c.add_special) != c.ids;
    });
  for (auto& th : threads) th.join();
  for (size_t f : failures) BOOST_CHECK_EQUAL(f, 0u);
}
