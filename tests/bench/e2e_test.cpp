// End to end: starts `troupe serve` (whatever its default model is: the byte-level sim or a tiny real
// model), drives it with `troupe bench` and `troupe chat` as a user would, and checks what they report.
#define BOOST_TEST_MODULE bench_e2e_test
#include <boost/test/unit_test.hpp>

#include "tests/support/server_process.hpp"

#include <signal.h>
#include <stdlib.h>

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

namespace {

using troupe::testing::CommandResult;
using troupe::testing::ServerProcess;

CommandResult run(std::vector<std::string> args) { return troupe::testing::run_troupe(std::move(args), 240); }

std::string temp_dir() {
  char tmpl[] = "/tmp/troupe_bench_e2e_XXXXXX";
  BOOST_REQUIRE(mkdtemp(tmpl));
  return tmpl;
}

}  // namespace

BOOST_AUTO_TEST_CASE(bench_and_chat_against_troupe_serve) {
  ServerProcess server({"--port", "0", "--host", "127.0.0.1", "--log-level", "warn"});
  const std::string url = "http://127.0.0.1:" + std::to_string(server.port());
  std::string dir = temp_dir(), file = dir + "/result.json";

  auto r = run({"bench", "--base-url", url, "--num-prompts", "50", "--random-input-len", "32",
                   "--random-output-len", "16", "--max-concurrency", "8", "--ignore-eos", "--save-result",
                   "--result-filename", file});
  BOOST_TEST_MESSAGE(r.output);
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  BOOST_TEST(r.output.find("============ Serving Benchmark Result ============") != std::string::npos);
  BOOST_TEST(r.output.find("Mean TTFT (ms):") != std::string::npos);
  BOOST_TEST(r.output.find("P99 ITL (ms):") != std::string::npos);
  std::ifstream in(file);
  BOOST_REQUIRE(in);
  auto j = nlohmann::json::parse(in);
  BOOST_TEST(j["completed"].get<int>() == 50);
  BOOST_TEST(j["failed"].get<int>() == 0);
  BOOST_TEST(j["total_output_tokens"].get<int>() == 50 * 16);
  BOOST_TEST(j["total_input_tokens"].get<int>() > 0);
  BOOST_TEST(j["mean_ttft_ms"].get<double>() > 0);
  BOOST_TEST(j["mean_tpot_ms"].get<double>() > 0);
  BOOST_TEST(j["max_concurrency"].get<int>() == 8);
  for (const char* key : {"date", "backend", "model_id", "tokenizer_id", "num_prompts", "request_rate", "burstiness",
                          "duration", "request_throughput", "request_goodput", "output_throughput",
                          "total_token_throughput", "latencies", "queue_times", "max_output_tokens_per_s",
                          "median_ttft_ms", "std_ttft_ms", "p99_ttft_ms", "mean_itl_ms", "p99_tpot_ms"})
    BOOST_TEST(j.contains(key), key);
  BOOST_TEST(j["request_rate"] == "inf");

  // The chat endpoint at a bursty rate, then the llmperf mode.
  r = run({"bench", "--base-url", url, "--backend", "openai-chat", "--num-prompts", "6", "--random-input-len", "16",
              "--random-output-len", "4", "--request-rate", "50", "--burstiness", "0.5", "--ignore-eos",
              "--disable-tqdm"});
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  BOOST_TEST(r.output.find("Successful requests:                     6") != std::string::npos, r.output);
  r = run({"bench", "--llmperf", "--base-url", url, "--mean-input-tokens", "40", "--stddev-input-tokens", "5",
              "--mean-output-tokens", "8", "--stddev-output-tokens", "2", "--num-concurrent-requests", "3",
              "--max-num-completed-requests", "6", "--ignore-eos", "--results-dir", dir});
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  BOOST_TEST(r.output.find("Number Of Completed Requests: 6") != std::string::npos, r.output);
  BOOST_TEST(r.output.find("ttft_s\n    p25 = ") != std::string::npos, r.output);

  r = run({"chat", "Tell me a story", "--base-url", url, "--max-tokens", "12", "--temperature", "0"});
  BOOST_TEST(r.exit_code == 0, r.output);
  BOOST_TEST(!r.output.empty());
  r = run({"chat", "hello", "--base-url", url, "--model", "no-such-model"});
  BOOST_TEST(r.exit_code != 0);
  BOOST_TEST(r.output.find("does not exist") != std::string::npos, r.output);
  r = run({"chat", "hello", "--base-url", "http://127.0.0.1:1"});
  BOOST_TEST(r.exit_code != 0);

  BOOST_TEST(server.stop(SIGTERM, 60) == 0);
  std::system(("rm -rf " + dir).c_str());
}
