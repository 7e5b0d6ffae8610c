// Single-threaded encode throughput of troupe_tokenizer on a deterministic mixed corpus (>= 10 MB):
// the golden texts plus generated prose, code, numbers, CJK and emoji. --write-corpus saves the corpus as
// JSON lines so hf_bench.py encodes exactly the same documents with HF `tokenizers`.
//   tokenizer_bench [--tokenizer DIR] [--golden FILE] [--mb N] [--passes N] [--write-corpus FILE]
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/tokenizer/tokenizer.hpp"

namespace {

struct Options {
  std::string dir = std::string(TROUPE_SOURCE_DIR) + "/tests/data/tokenizer/deepseek-r1";
  std::string golden = std::string(TROUPE_SOURCE_DIR) + "/tests/data/tokenizer/golden/deepseek_r1.jsonl";
  double mb = 10.5;
  int passes = 3;
  std::string write_corpus;
};

// Deterministic generator (no std:: distributions: their output differs between standard libraries).
struct Lcg {
  uint64_t s = 0x5eed;
  uint32_t next() { return uint32_t((s = s * 6364136223846793005ull + 1442695040888963407ull) >> 33); }
  template <typename T> const T& pick(const std::vector<T>& v) { return v[next() % v.size()]; }
};

std::string generated_doc(Lcg& g) {
  static const std::vector<std::string> words = {
      "the", "model", "inference", "server", "token", "of", "and", "to", "a", "in", "is", "that", "for",
      "DeepSeek", "attention", "expert", "latency", "throughput", "we", "it's", "don't", "they're",
      "模型", "推理", "服务器", "注意力", "专家", "的", "是", "日本語", "テキスト", "сервер", "модель",
      "λόγος", "مرحبا", "नमस्ते", "ภาษาไทย", "😀", "👍🏽", "🚀", "café", "naïve", "Zürich"};
  static const std::vector<std::string> code = {
      "def f(x):\n    return x * 2\n", "for (int i = 0; i < n; ++i) {\n\tsum += a[i];\n}\n",
      "const y = await fetch(`/api/${id}`);\n", "SELECT name FROM users WHERE id = 42;\n",
      "#include <vector>\nstd::vector<int> v{1, 2, 3};\n", "fn main() { println!(\"{}\", x); }\n"};
  static const std::vector<std::string> seps = {" ", " ", " ", " ", ", ", ". ", "\n", "  ", "\t"};
  std::string doc;
  size_t target = 1000 + g.next() % 3000;
  while (doc.size() < target) {
    uint32_t r = g.next() % 20;
    if (r == 0) doc += g.pick(code);
    else if (r == 1) doc += std::to_string(g.next()) + "." + std::to_string(g.next() % 1000);
    else doc += g.pick(words);
    doc += g.pick(seps);
  }
  return doc;
}

std::vector<std::string> build_corpus(const Options& o) {
  std::vector<std::string> golden;
  std::ifstream in(o.golden);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) golden.push_back(nlohmann::json::parse(line).at("text").get<std::string>());
  std::vector<std::string> docs;
  size_t bytes = 0, target = size_t(o.mb * 1e6);
  Lcg g;
  while (bytes < target) {
    std::string doc = generated_doc(g);
    for (int k = 0; k < 8 && !golden.empty(); ++k) doc += golden[g.next() % golden.size()] + "\n";
    bytes += doc.size();
    docs.push_back(std::move(doc));
  }
  return docs;
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--tokenizer") o.dir = v;
    else if (k == "--golden") o.golden = v;
    else if (k == "--mb") o.mb = std::stod(v);
    else if (k == "--passes") o.passes = std::stoi(v);
    else if (k == "--write-corpus") o.write_corpus = v;
    else throw std::runtime_error("unknown option " + k);
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) try {
  Options o = parse(argc, argv);
  auto docs = build_corpus(o);
  size_t bytes = 0;
  for (const auto& d : docs) bytes += d.size();
  if (!o.write_corpus.empty()) {
    std::ofstream out(o.write_corpus);
    for (const auto& d : docs) out << nlohmann::json(d).dump() << "\n";
  }
  auto t0 = std::chrono::steady_clock::now();
  auto tok = troupe::Tokenizer::from_files(o.dir + "/tokenizer.json", o.dir + "/tokenizer_config.json");
  double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("corpus: %zu docs, %.2f MB; load %.2f s\n", docs.size(), bytes / 1e6, load_s);
  double best = 1e30;
  for (int p = 0; p < o.passes; ++p) {
    size_t tokens = 0;
    auto start = std::chrono::steady_clock::now();
    for (const auto& d : docs) tokens += tok.encode(d, false).size();
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    best = std::min(best, s);
    std::printf("pass %d: %zu tokens, %.3f s, %.2f MB/s\n", p + 1, tokens, s, bytes / 1e6 / s);
  }
  std::printf("troupe encode: %.2f MB/s (best of %d passes, 1 thread)\n", bytes / 1e6 / best, o.passes);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "tokenizer_bench: %s\n", e.what());
  return 1;
}
