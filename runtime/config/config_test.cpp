#define BOOST_TEST_MODULE config
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iostream>
#include <string>
#include <vector>

#include <unistd.h>

#include "runtime/config/config.hpp"

using troupe::Config;
using troupe::ConfigError;
using troupe::load_config;
using troupe::parse_config_text;
using Args = std::vector<std::string>;

namespace {

// A predicate for BOOST_CHECK_EXCEPTION: every fragment must appear in what(); prints it otherwise.
auto says(std::initializer_list<std::string> fragments) {
  std::vector<std::string> want(fragments);
  return [want](const ConfigError& e) {
    std::string msg = e.what();
    for (const auto& w : want) {
      if (msg.find(w) == std::string::npos) {
        std::cerr << "message lacks '" << w << "': " << msg << "\n";
        return false;
      }
    }
    return true;
  };
}

// A YAML file under the temp dir, removed when the test ends.
struct TempFile {
  std::filesystem::path path;
  explicit TempFile(const std::string& text) {
    static std::atomic<int> n{0};
    path = std::filesystem::temp_directory_path() /
           ("troupe_config_test_" + std::to_string(::getpid()) + "_" + std::to_string(n++) + ".yaml");
    std::ofstream(path) << text;
  }
  ~TempFile() { std::filesystem::remove(path); }
};

}  // namespace

BOOST_AUTO_TEST_CASE(defaults) {
  Config c = parse_config_text("");
  BOOST_TEST(c.model == "");
  BOOST_TEST(c.served_model_name == "troupe-default");
  BOOST_TEST(c.tensor_parallel_size == 1);
  BOOST_TEST(c.max_model_len == 4096);
  BOOST_TEST(c.max_num_seqs == 256);
  BOOST_TEST(c.max_num_batched_tokens == 8192);
  BOOST_TEST(c.gpu_memory_utilization == 0.9);
  BOOST_TEST(c.block_size == 16);
  BOOST_TEST(!c.enable_prefix_caching);
  BOOST_TEST(c.load_format == "auto");
  BOOST_TEST(c.kv_cache_dtype == "auto");
  BOOST_TEST(c.host == "0.0.0.0");
  BOOST_TEST(c.port == 8000);
  BOOST_TEST(!c.num_gpu_blocks_override.has_value());
  BOOST_TEST(c.backend == "cpu");
  BOOST_TEST(c.nodes == 1);
  BOOST_TEST(c.sim.step_us == 200.0);
  BOOST_TEST(c.sim_vocab_size == 256);
  // No file at all gives the same, and a comment-only document is empty, not an error.
  BOOST_TEST(load_config("", {}).max_num_seqs == 256);
  BOOST_TEST(parse_config_text("# nothing here\n").port == 8000);
}

BOOST_AUTO_TEST_CASE(yaml_values_of_every_kind) {
  Config c = parse_config_text(
      "model: /models/ds\n"
      "tensor-parallel-size: 8\n"
      "gpu-memory-utilization: 0.85\n"
      "block-size: 64\n"
      "enable-prefix-caching: true\n"
      "kv-cache-dtype: fp8_e4m3\n"
      "reasoning-parser: deepseek_r1\n"
      "num-gpu-blocks-override: 1000\n"
      "seed: 18446744073709551615\n"
      "backend: cuda\n"
      "port: 0\n"
      "sim-step-us: 12.5\n"
      "shutdown-grace-seconds: 0\n");
  BOOST_TEST(c.model == "/models/ds");
  BOOST_TEST(c.served_model_name == "/models/ds");  // defaults to model
  BOOST_TEST(c.tensor_parallel_size == 8);
  BOOST_TEST(c.gpu_memory_utilization == 0.85);
  BOOST_TEST(c.block_size == 64);
  BOOST_TEST(c.enable_prefix_caching);
  BOOST_TEST(c.kv_cache_dtype == "fp8_e4m3");
  BOOST_TEST(c.reasoning_parser == "deepseek_r1");
  BOOST_TEST(c.num_gpu_blocks_override.value_or(-1) == 1000);
  BOOST_TEST(c.seed == 18446744073709551615ull);
  BOOST_TEST(c.backend == "cuda");
  BOOST_TEST(c.port == 0);
  BOOST_TEST(c.sim.step_us == 12.5);
  BOOST_TEST(c.shutdown_grace_seconds == 0.0);
}

BOOST_AUTO_TEST_CASE(served_model_name_explicit_and_null_optional) {
  Config c = parse_config_text("model: m\nserved-model-name: public\nnum-gpu-blocks-override: null\n");
  BOOST_TEST(c.served_model_name == "public");
  BOOST_TEST(!c.num_gpu_blocks_override.has_value());
  BOOST_TEST(!parse_config_text("", {"--num-gpu-blocks-override", "none"}).num_gpu_blocks_override);
}

BOOST_AUTO_TEST_CASE(yaml_file_loaded) {
  TempFile f("max-num-seqs: 32\nbackend: cpu\n");
  Config c = load_config(f.path.string(), {});
  BOOST_TEST(c.max_num_seqs == 32);
  BOOST_TEST(c.backend == "cpu");
}

BOOST_AUTO_TEST_CASE(cli_overrides_yaml) {
  TempFile f("max-num-seqs: 32\nport: 9000\nmodel: a\n");
  Config c = load_config(f.path.string(), {"--max-num-seqs", "64", "--port=9100", "--model", "b"});
  BOOST_TEST(c.max_num_seqs == 64);
  BOOST_TEST(c.port == 9100);
  BOOST_TEST(c.model == "b");
  BOOST_TEST(c.served_model_name == "b");  // derived after the override, not from the YAML's model
  // Repeating a flag: the last one wins, as with argparse.
  BOOST_TEST(parse_config_text("", {"--port", "1", "--port", "2"}).port == 2);
}

BOOST_AUTO_TEST_CASE(boolean_flags) {
  BOOST_TEST(parse_config_text("", {"--enable-prefix-caching"}).enable_prefix_caching);
  BOOST_TEST(!parse_config_text("enable-prefix-caching: true", {"--no-enable-prefix-caching"}).enable_prefix_caching);
  BOOST_TEST(!parse_config_text("", {"--enable-prefix-caching", "false"}).enable_prefix_caching);
  BOOST_TEST(parse_config_text("", {"--enable-prefix-caching", "true"}).enable_prefix_caching);
  BOOST_TEST(!parse_config_text("", {"--enable-prefix-caching=false"}).enable_prefix_caching);
  // A bare flag followed by another flag takes true and leaves the next flag alone.
  Config c = parse_config_text("", {"--enable-prefix-caching", "--port", "7"});
  BOOST_TEST(c.enable_prefix_caching);
  BOOST_TEST(c.port == 7);
}

BOOST_AUTO_TEST_CASE(underscore_aliases) {
  Config c = parse_config_text("max_num_seqs: 4\nkv_cache_dtype: fp8\n",
                               {"--max_model_len", "100", "--gpu_memory_utilization=0.5", "--enable_prefix_caching"});
  BOOST_TEST(c.max_num_seqs == 4);
  BOOST_TEST(c.kv_cache_dtype == "fp8");
  BOOST_TEST(c.max_model_len == 100);
  BOOST_TEST(c.gpu_memory_utilization == 0.5);
  BOOST_TEST(c.enable_prefix_caching);
  BOOST_TEST(!parse_config_text("", {"--no-enable_prefix_caching"}).enable_prefix_caching);
  // Both spellings of one key in one file is a duplicate, not a silent pick.
  BOOST_CHECK_EXCEPTION(parse_config_text("max_num_seqs: 4\nmax-num-seqs: 5\n"), ConfigError,
                        says({"max-num-seqs", "twice"}));
}

BOOST_AUTO_TEST_CASE(unknown_keys) {
  BOOST_CHECK_EXCEPTION(parse_config_text("max-num-seq: 4\n"), ConfigError,
                        says({"unknown config key 'max-num-seq'", "did you mean 'max-num-seqs'?", "<text>:1"}));
  BOOST_CHECK_EXCEPTION(parse_config_text("", {"--tensor-paralel-size", "2"}), ConfigError,
                        says({"'tensor-paralel-size'", "did you mean 'tensor-parallel-size'"}));
  // Far from every key: no guess.
  BOOST_CHECK_EXCEPTION(parse_config_text("", {"--frobnicate", "1"}), ConfigError,
                        [](const ConfigError& e) {
                          std::string m = e.what();
                          return m.find("frobnicate") != std::string::npos && m.find("did you mean") == std::string::npos;
                        });
  // --no- only exists for booleans.
  BOOST_CHECK_EXCEPTION(parse_config_text("", {"--no-port"}), ConfigError, says({"'port'", "true/false"}));
}

BOOST_AUTO_TEST_CASE(wrong_types) {
  BOOST_CHECK_EXCEPTION(parse_config_text("max-num-seqs: [1, 2]\n"), ConfigError,
                        says({"max-num-seqs", "expected an integer >= 1", "sequence"}));
  BOOST_CHECK_EXCEPTION(parse_config_text("model:\n  name: x\n"), ConfigError, says({"'model'", "mapping"}));
  BOOST_CHECK_EXCEPTION(parse_config_text("max-num-seqs: abc\n"), ConfigError,
                        says({"config key 'max-num-seqs': expected an integer >= 1, got 'abc'"}));
  BOOST_CHECK_EXCEPTION(parse_config_text("max-model-len: 1.5\n"), ConfigError, says({"max-model-len", "'1.5'"}));
  BOOST_CHECK_EXCEPTION(parse_config_text("", {"--max-num-seqs", "12x"}), ConfigError, says({"max-num-seqs", "'12x'"}));
  BOOST_CHECK_EXCEPTION(parse_config_text("enable-prefix-caching: maybe\n"), ConfigError,
                        says({"enable-prefix-caching", "true or false", "'maybe'"}));
  BOOST_CHECK_EXCEPTION(parse_config_text("", {"--enable-prefix-caching", "maybe"}), ConfigError,
                        says({"enable-prefix-caching", "'maybe'"}));
  BOOST_CHECK_EXCEPTION(parse_config_text("seed: -1\n"), ConfigError, says({"seed", "unsigned"}));
  BOOST_CHECK_EXCEPTION(parse_config_text("port:\n"), ConfigError, says({"port", "empty value"}));
  BOOST_CHECK_EXCEPTION(parse_config_text("- a\n- b\n"), ConfigError, says({"mapping", "sequence"}));
}

BOOST_AUTO_TEST_CASE(out_of_range) {
  BOOST_CHECK_EXCEPTION(parse_config_text("port: 70000\n"), ConfigError,
                        says({"port", "[0, 65535]", "'70000'"}));
  BOOST_CHECK_EXCEPTION(parse_config_text("gpu-memory-utilization: 0\n"), ConfigError,
                        says({"gpu-memory-utilization", "(0, 1]", "'0'"}));
  BOOST_CHECK_EXCEPTION(parse_config_text("", {"--gpu-memory-utilization", "1.5"}), ConfigError,
                        says({"gpu-memory-utilization", "'1.5'"}));
  BOOST_CHECK_EXCEPTION(parse_config_text("block-size: 7\n"), ConfigError,
                        says({"block-size", "one of 1, 8, 16, 32, 64, 128", "'7'"}));
  BOOST_CHECK_EXCEPTION(parse_config_text("", {"--tensor-parallel-size=0"}), ConfigError,
                        says({"tensor-parallel-size", "'0'"}));
  BOOST_CHECK_EXCEPTION(parse_config_text("max-num-seqs: 99999999999\n"), ConfigError, says({"max-num-seqs"}));
  BOOST_CHECK_EXCEPTION(parse_config_text("sim-step-us: -1\n"), ConfigError, says({"sim-step-us", ">= 0"}));
  BOOST_CHECK_EXCEPTION(parse_config_text("sim-vocab-size: 1\n"), ConfigError, says({"sim-vocab-size", ">= 2"}));
  BOOST_TEST(parse_config_text("gpu-memory-utilization: 1\n").gpu_memory_utilization == 1.0);
}

BOOST_AUTO_TEST_CASE(enums) {
  BOOST_CHECK_EXCEPTION(parse_config_text("backend: gpu\n"), ConfigError,
                        says({"backend", "one of cuda, cpu, sim", "'gpu'"}));
  BOOST_CHECK_EXCEPTION(parse_config_text("", {"--log-level", "verbose"}), ConfigError, says({"log-level", "'verbose'"}));
  BOOST_CHECK_EXCEPTION(parse_config_text("", {"--dtype=fp8"}), ConfigError, says({"dtype", "bfloat16"}));
}

BOOST_AUTO_TEST_CASE(command_line_shape) {
  BOOST_CHECK_EXCEPTION(parse_config_text("", {"--max-num-seqs"}), ConfigError,
                        says({"max-num-seqs", "missing value"}));
  BOOST_CHECK_EXCEPTION(parse_config_text("", {"--model", "--port", "1"}), ConfigError,
                        says({"model", "missing value"}));
  BOOST_CHECK_EXCEPTION(parse_config_text("", {"serve"}), ConfigError, says({"'serve'"}));
  BOOST_CHECK_EXCEPTION(parse_config_text("", {"--port", "1", "extra"}), ConfigError, says({"'extra'"}));
  BOOST_CHECK_EXCEPTION(parse_config_text("", {"--no-enable-prefix-caching=true"}), ConfigError,
                        says({"enable-prefix-caching"}));
}

BOOST_AUTO_TEST_CASE(cross_key_checks) {
  Config c = parse_config_text("tensor-parallel-size: 8\nnodes: 2\nbackend: sim\njoin-token: s3cret\n");
  BOOST_TEST(c.nodes == 2);
  BOOST_CHECK_EXCEPTION(parse_config_text("tensor-parallel-size: 3\nnodes: 2\n"), ConfigError,
                        says({"tensor-parallel-size", "nodes"}));
  BOOST_CHECK_EXCEPTION(parse_config_text("", {"--nodes", "0"}), ConfigError, says({"nodes", ">= 1"}));
  // Chunked prefill: fewer batched tokens than the model length, or than max-num-seqs, is allowed.
  Config d = parse_config_text("max-num-batched-tokens: 64\nmax-model-len: 4096\nmax-num-seqs: 128\n");
  BOOST_TEST(d.max_num_batched_tokens == 64);
}

BOOST_AUTO_TEST_CASE(node_keys) {
  Config one = parse_config_text("host: 10.0.0.5\n");
  BOOST_TEST(one.join_host == "10.0.0.5");  // the join port binds where HTTP does unless told otherwise
  BOOST_TEST(one.join_port == 8100);
  Config two = parse_config_text("nodes: 2\ntensor-parallel-size: 2\nbackend: sim\n",
                                 {"--join-token", "t", "--join-host", "127.0.0.2", "--heartbeat-timeout-ms", "1500"});
  BOOST_TEST(two.join_host == "127.0.0.2");
  BOOST_TEST(two.heartbeat_timeout_ms == 1500);
  BOOST_CHECK_EXCEPTION(parse_config_text("nodes: 2\ntensor-parallel-size: 2\nbackend: sim\n"), ConfigError,
                        says({"join-token", "TROUPE_JOIN_TOKEN"}));
  BOOST_CHECK_EXCEPTION(parse_config_text("nodes: 2\ntensor-parallel-size: 2\nbackend: sim\njoin-token: t\n"
                                          "heartbeat-interval-ms: 500\nheartbeat-timeout-ms: 500\n"),
                        ConfigError, says({"heartbeat-timeout-ms", "heartbeat-interval-ms"}));
  BOOST_CHECK_EXCEPTION(parse_config_text("nodes: 2\ntensor-parallel-size: 2\njoin-token: t\n"), ConfigError,
                        says({"'nodes'", "cpu"}));
  BOOST_CHECK_EXCEPTION(parse_config_text("", {"--join-port", "70000"}), ConfigError, says({"join-port"}));
  ::setenv("TROUPE_JOIN_TOKEN", "from-env", 1);
  Config env = parse_config_text("nodes: 2\ntensor-parallel-size: 2\nbackend: sim\n");
  ::unsetenv("TROUPE_JOIN_TOKEN");
  BOOST_TEST(env.join_token == "from-env");
}

// The multi-node examples in config/ (ctest runs this from runtime/config).
BOOST_AUTO_TEST_CASE(example_deployments_load) {
  ::setenv("TROUPE_JOIN_TOKEN", "example", 1);
  Config two = load_config("../../config/sim-2node.yaml", {});
  ::unsetenv("TROUPE_JOIN_TOKEN");
  BOOST_TEST(two.nodes == 2);
  BOOST_TEST(two.tensor_parallel_size == 4);
  BOOST_TEST(two.join_token == "example");
  Config a4 = load_config("../../config/a4-8xb200.yaml", {});
  BOOST_TEST(a4.tensor_parallel_size == 8);
  BOOST_TEST(a4.backend == "cuda");
  // The comment's two-node extension is a valid config too.
  Config a4x2 = load_config("../../config/a4-8xb200.yaml",
                            {"--nodes", "2", "--tensor-parallel-size", "16", "--join-token", "t"});
  BOOST_TEST(a4x2.nodes == 2);
}

BOOST_AUTO_TEST_CASE(file_errors) {
  auto missing = std::filesystem::temp_directory_path() / "troupe_config_test_no_such_file.yaml";
  BOOST_CHECK_EXCEPTION(load_config(missing.string(), {}), ConfigError, says({missing.string(), "does not exist"}));
  BOOST_CHECK_EXCEPTION(load_config(std::filesystem::temp_directory_path().string(), {}), ConfigError,
                        says({"not a regular file"}));
  TempFile bad("port: 1\nmodel: [unclosed\n");
  BOOST_CHECK_EXCEPTION(load_config(bad.path.string(), {}), ConfigError, says({bad.path.string(), "line"}));
  TempFile wrong("port: 1\n\nport2: 3\n");
  BOOST_CHECK_EXCEPTION(load_config(wrong.path.string(), {}), ConfigError,
                        says({"'port2'", wrong.path.string() + ":3"}));
}

BOOST_AUTO_TEST_CASE(help_lists_every_key) {
  std::string help = troupe::config_help();
  for (const char* key : {"model", "served-model-name", "tensor-parallel-size", "max-model-len", "max-num-seqs",
                          "max-num-batched-tokens", "gpu-memory-utilization", "block-size", "enable-prefix-caching",
                          "load-format", "dtype", "kv-cache-dtype", "reasoning-parser", "host", "port",
                          "num-gpu-blocks-override", "seed", "backend", "nodes", "http-threads",
                          "max-waiting-requests", "shutdown-grace-seconds", "log-level", "sim-step-us",
                          "sim-prefill-token-us", "sim-decode-seq-us", "sim-vocab-size", "skip-tokenizer-init", "enforce-eager",
                          "join-host", "join-port", "join-token", "node-timeout-seconds", "heartbeat-interval-ms",
                          "heartbeat-timeout-ms"}) {
    BOOST_TEST_CONTEXT(key) {
      bool listed = help.find(std::string("--") + key + " ") != std::string::npos ||
                    help.find(std::string("--[no-]") + key + " ") != std::string::npos;
      BOOST_TEST(listed);
    }
  }
  BOOST_TEST(help.find("(default: 256)") != std::string::npos);
  BOOST_TEST(help.find("(default: 0.9)") != std::string::npos);
  BOOST_TEST(help.find("(default: cpu)") != std::string::npos);
}

// Defaults derived from the model (max-model-len) must know whether the user gave the key, wherever from.
BOOST_AUTO_TEST_CASE(explicit_keys_are_recorded) {
  Config none = parse_config_text("");
  BOOST_TEST(!none.is_set("max-model-len"));
  BOOST_TEST(none.max_model_len == 4096);
  Config yaml = parse_config_text("max_model_len: 4096\n");  // the default value, but given
  BOOST_TEST(yaml.is_set("max-model-len"));
  BOOST_TEST(!yaml.is_set("max-num-seqs"));
  Config cli = parse_config_text("", {"--max-model-len=100", "--no-skip-tokenizer-init"});
  BOOST_TEST(cli.is_set("max-model-len"));
  BOOST_TEST(cli.is_set("skip-tokenizer-init"));
  BOOST_TEST(cli.explicit_keys.size() == 2u);
  BOOST_TEST(parse_config_text("", {"--skip-tokenizer-init"}).skip_tokenizer_init);
}
