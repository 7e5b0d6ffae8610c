// The embedded default model (models/stories260K, converted from llama2.c) against llama2.c's own greedy
// outputs and transformers' logits (tests/data/stories260K, see its PROVENANCE.md).
#include "model/cpu/cpu_model.hpp"
#include "model/tokenizer/tokenizer.hpp"

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <fstream>
#include <sstream>

using namespace troupe;
using namespace troupe::cpu;

namespace {
const std::string kModel = std::string(TROUPE_SOURCE_DIR) + "/models/stories260K";
const std::string kData = std::string(TROUPE_SOURCE_DIR) + "/tests/data/stories260K/";

std::string read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  BOOST_REQUIRE_MESSAGE(in, "cannot open " << path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::int32_t> read_ids(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::int32_t> ids;
  for (std::int32_t v; in >> v;) ids.push_back(v);
  return ids;
}

std::unique_ptr<CpuModel> load(unsigned threads, std::uint32_t block_size = 16) {
  CpuModelOptions o;
  o.model_dir = kModel;
  o.block_size = block_size;
  o.num_blocks = 64;
  o.threads = threads;
  return load_cpu_model(o);
}

// llama2.c's `run -t 0 -n steps`: the prompt is fed (in one chunk here), then argmax tokens until
// steps + 1 positions or a BOS. Blocks are handed out in reverse to exercise the paging.
std::vector<std::int32_t> greedy(CpuModel& m, std::vector<std::int32_t> ids, std::size_t steps, std::uint32_t bs) {
  std::vector<std::uint32_t> table;
  for (std::uint32_t b = 0; b * bs < steps + 1; ++b) table.push_back(63 - b);
  std::size_t computed = 0;
  while (ids.size() < steps + 1) {
    Chunk c{std::span(ids).subspan(computed), std::uint32_t(computed), table, true};
    auto logits = m.forward(std::span(&c, 1));
    computed = ids.size();
    auto next = std::int32_t(std::max_element(logits[0].begin(), logits[0].end()) - logits[0].begin());
    if (next == 1) break;
    ids.push_back(next);
  }
  return ids;
}

Tokenizer tokenizer() { return Tokenizer::from_files(kModel + "/tokenizer.json", kModel + "/tokenizer_config.json"); }
}  // namespace

BOOST_AUTO_TEST_CASE(stories_tokenizer_matches_llama2c) {
  auto tok = tokenizer();
  // llama2.c's encoder: BOS, a dummy-prefix space, then best-score merges.
  BOOST_TEST(tok.encode("Once upon a time", true) == std::vector<std::int32_t>({1, 403, 407, 261, 378}));
  auto golden = read_ids(read(kData + "golden_t0_n256_noprompt.ids"));
  auto text = read(kData + "golden_t0_n256_noprompt.txt");
  BOOST_TEST(tok.decode(std::span(golden).subspan(1), true) + "\n" == text);
}

BOOST_AUTO_TEST_CASE(stories_logits_match_transformers) {
  std::istringstream in(read(kData + "logits_once_upon_a_time.txt"));
  std::string line;
  std::getline(in, line);
  auto ids = read_ids(line);
  auto m = load(2);
  std::vector<std::uint32_t> table = {5};
  for (std::size_t n = 1; n <= ids.size(); ++n) {  // one token at a time: every position's logits
    Chunk c{std::span(ids).subspan(n - 1, 1), std::uint32_t(n - 1), table, true};
    auto got = m->forward(std::span(&c, 1))[0];
    std::getline(in, line);
    std::istringstream row(line);
    float max_err = 0;
    for (std::size_t v = 0; v < got.size(); ++v) {
      float want;
      row >> want;
      max_err = std::max(max_err, std::abs(want - got[v]));
    }
    BOOST_TEST(max_err < 1e-4f, "position " << n - 1 << " max |logit error| " << max_err);
  }
}

BOOST_AUTO_TEST_CASE(stories_greedy_reproduces_llama2c_no_prompt) {
  auto m = load(2);
  auto ids = greedy(*m, {1}, 256, 16);
  BOOST_TEST(ids == read_ids(read(kData + "golden_t0_n256_noprompt.ids")));
  BOOST_TEST(tokenizer().decode(std::span(ids).subspan(1), true) + "\n" == read(kData + "golden_t0_n256_noprompt.txt"));
}

BOOST_AUTO_TEST_CASE(stories_greedy_reproduces_llama2c_prompt) {
  auto tok = tokenizer();
  auto m = load(1, 8);
  auto ids = greedy(*m, tok.encode("Once upon a time", true), 64, 8);
  BOOST_TEST(ids == read_ids(read(kData + "golden_t0_n64_once_upon_a_time.ids")));
  BOOST_TEST(tok.decode(std::span(ids).subspan(1), true) + "\n" == read(kData + "golden_t0_n64_once_upon_a_time.txt"));
}
