#pragma once
// The deployment config: YAML whose keys are vLLM's flag names (plus Troupe's own), each overridable
// on the command line as --key value. Every key is declared once in config.cpp's key table, which gives
// its type, default, range and help; unknown keys and bad values are rejected with the key named.
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace troupe {

// Thrown for any config problem; what() names the offending key, e.g.
// "config key 'max-num-seqs': expected an integer >= 1, got 'abc'".
struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct SimCostModel {            // the sim backend's step time: step_us + prefill_token_us*P + decode_seq_us*D
  double step_us = 200.0;         // key: sim-step-us
  double prefill_token_us = 1.0;  // key: sim-prefill-token-us
  double decode_seq_us = 20.0;    // key: sim-decode-seq-us
};

struct Config {
  // --- vLLM's keys ---
  std::string model;                       // model: path or name; empty = the embedded default
  std::string served_model_name;           // served-model-name: defaults to `model` (or "troupe-default")
  int tensor_parallel_size = 1;            // tensor-parallel-size: >= 1
  int max_model_len = 4096;                // max-model-len: >= 1; unset: the model's max_position_embeddings
  int max_num_seqs = 256;                  // max-num-seqs: >= 1
  int max_num_batched_tokens = 8192;       // max-num-batched-tokens: >= 1
  double gpu_memory_utilization = 0.9;     // gpu-memory-utilization: (0, 1]
  int block_size = 16;                     // block-size: one of 1, 8, 16, 32, 64, 128
  bool enable_prefix_caching = false;      // enable-prefix-caching
  std::string load_format = "auto";        // load-format: auto | dummy
  std::string dtype = "auto";              // dtype: auto | bfloat16 | float16 | float32
  std::string kv_cache_dtype = "auto";     // kv-cache-dtype: auto | fp8 | fp8_e4m3 | bfloat16
  std::string reasoning_parser;            // reasoning-parser: "" | deepseek_r1
  std::string host = "0.0.0.0";            // host
  int port = 8000;                         // port: 0..65535 (0 = any free port, printed at start)
  std::optional<int> num_gpu_blocks_override;  // num-gpu-blocks-override: >= 1
  std::uint64_t seed = 0;                  // seed
  bool skip_tokenizer_init = false;        // skip-tokenizer-init: no tokenizer; prompts are token ids, replies ids
  bool enforce_eager = false;              // enforce-eager: no CUDA graphs for decode steps (cuda backend)
  // --- Troupe's own ---
  std::string backend = "cpu";             // backend: cuda | cpu | sim (cpu + no model = the embedded stories260K)
  int nodes = 1;                           // nodes: >= 1 (the head counts; tensor-parallel-size divides evenly)
  std::string join_host;                   // join-host: address the join port binds ("" = the host key)
  int join_port = 8100;                    // join-port: where worker nodes join (0 = any free port, printed)
  std::string join_token;                  // join-token: shared secret of the nodes (or TROUPE_JOIN_TOKEN)
  double node_timeout_seconds = 300;       // node-timeout-seconds: how long startup waits for the nodes
  int heartbeat_interval_ms = 1000;        // heartbeat-interval-ms: head -> node heartbeats
  int heartbeat_timeout_ms = 5000;         // heartbeat-timeout-ms: a node silent this long is lost
  int http_threads = 2;                    // http-threads: >= 1
  int max_request_body_bytes = 32 << 20;   // max-request-body-bytes: larger bodies get 413
  int max_header_bytes = 64 << 10;         // max-header-bytes: larger headers get 431
  double http_idle_timeout_seconds = 60;   // http-idle-timeout-seconds: idle keep-alive connections close
  double http_read_timeout_seconds = 30;   // http-read-timeout-seconds: slow requests get 408
  int max_waiting_requests = 100000;       // max-waiting-requests: >= 1 (a full queue answers 503)
  double shutdown_grace_seconds = 10.0;    // shutdown-grace-seconds: >= 0; in-flight work gets this long on SIGTERM
  std::string log_level = "info";          // log-level: trace | debug | info | warn | error
  SimCostModel sim;                        // sim-step-us, sim-prefill-token-us, sim-decode-seq-us: >= 0
  int sim_vocab_size = 256;                // sim-vocab-size: >= 2 (sim tokens are bytes of printable text)

  // The keys the YAML file or the command line gave (canonical spelling), so that defaults derived from
  // the model (max-model-len) apply only where the user said nothing. A Config built in code that sets
  // such a key lists it here too.
  std::vector<std::string> explicit_keys;
  bool is_set(const std::string& key) const;
};

// Loads `yaml_path` (may be empty: defaults only) and then applies `--key value` / `--key=value` /
// bare `--flag` (booleans) overrides from `args`. Throws ConfigError naming the key.
Config load_config(const std::string& yaml_path, const std::vector<std::string>& args);

// Parses YAML text (for tests and for configs embedded in the binary).
Config parse_config_text(const std::string& yaml_text, const std::vector<std::string>& args = {});

// One line per key: "  --key VALUE   help (default: X)"; used by `troupe serve --help`.
std::string config_help();

}  // namespace troupe
