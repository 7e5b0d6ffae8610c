#define BOOST_TEST_MODULE config_cli
#include <boost/test/unit_test.hpp>

#include "tests/support/server_process.hpp"

#include <filesystem>
#include <fstream>

using namespace troupe::testing;

namespace {
void rejected(const std::vector<std::string>& args, const std::string& key) {
  std::vector<std::string> full{"serve"};
  full.insert(full.end(), args.begin(), args.end());
  auto r = run_troupe(full, 30);
  BOOST_TEST_CONTEXT(r.output) {
    BOOST_CHECK_EQUAL(r.exit_code, 2);
    BOOST_CHECK(r.output.find("'" + key + "'") != std::string::npos);
  }
}
}  // namespace

// The binary itself rejects bad config at start, naming the key (the key table is unit-tested in
// runtime/config/config_test.cpp).
BOOST_AUTO_TEST_CASE(bad_keys_and_values_are_rejected_with_the_key_named) {
  rejected({"--max-num-seq", "4"}, "max-num-seq");                 // unknown key
  rejected({"--max-num-seqs", "abc"}, "max-num-seqs");             // wrong type
  rejected({"--port", "70000"}, "port");                           // out of range
  rejected({"--gpu-memory-utilization", "1.5"}, "gpu-memory-utilization");
  rejected({"--backend", "gpu"}, "backend");
  rejected({"--max-model-len", "1024"}, "max-model-len");          // over the default model's 512
  rejected({"--kv-cache-dtype", "fp8", "--backend", "cpu"}, "kv-cache-dtype");  // accepted, not implemented
  auto dir = std::filesystem::temp_directory_path() / "troupe_config_cli_test";
  std::filesystem::create_directories(dir);
  auto yaml = dir / "bad.yaml";
  std::ofstream(yaml) << "max-num-seqs: 8\nblock-size: [16]\n";
  rejected({yaml.string()}, "block-size");
  std::ofstream(yaml) << "tensor-parallel-size: 2\nspeculative: true\n";
  rejected({yaml.string()}, "speculative");
}

BOOST_AUTO_TEST_CASE(a_model_without_a_tokenizer_fails_startup_clearly) {
  auto r = run_troupe({"serve", "--port", "0", "--host", "127.0.0.1", "--model", "/nonexistent/model"}, 30);
  BOOST_CHECK_EQUAL(r.exit_code, 1);
  BOOST_CHECK(r.output.find("/nonexistent/model") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(help_lists_the_keys) {
  auto r = run_troupe({"serve", "--help"}, 30);
  BOOST_CHECK_EQUAL(r.exit_code, 0);
  BOOST_CHECK(r.output.find("--tensor-parallel-size") != std::string::npos);
}
