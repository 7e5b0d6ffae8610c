#define BOOST_TEST_MODULE stories_serve
// `troupe serve` with no model: the embedded stories260K on the cpu backend, end to end over HTTP.
#include <boost/test/unit_test.hpp>

#include "tests/support/http_client.hpp"
#include "tests/support/server_process.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <unistd.h>

using namespace troupe::testing;
using nlohmann::json;

namespace {
const std::string kSource = TROUPE_SOURCE_DIR;

json post_json(const ServerProcess& s, const std::string& path, const json& body, int want_status = 200) {
  auto r = http_request("127.0.0.1", s.port(), "POST", path, body.dump(), {{"content-type", "application/json"}});
  BOOST_REQUIRE_MESSAGE(r.status == want_status, body.dump() + " -> " + std::to_string(r.status) + " " + r.body);
  return json::parse(r.body);
}

// stories260K with its own generation_config.json, in a temp folder removed at the end.
struct ModelCopy {
  std::filesystem::path dir;
  explicit ModelCopy(const std::string& generation_config) {
    dir = std::filesystem::temp_directory_path() / ("troupe_stories_gen_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    for (auto& f : std::filesystem::directory_iterator(kSource + "/models/stories260K"))
      std::filesystem::copy_file(f.path(), dir / f.path().filename(), std::filesystem::copy_options::overwrite_existing);
    std::ofstream(dir / "generation_config.json") << generation_config;
  }
  ~ModelCopy() { std::filesystem::remove_all(dir); }
};
}  // namespace

BOOST_AUTO_TEST_CASE(default_model_continues_a_story_as_llama2c_does) {
  // No max-model-len: the model's max_position_embeddings (512), as vLLM takes it.
  ServerProcess server({"--backend", "cpu", "--log-level", "warn"});
  auto post = [&](const std::string& path, const json& body) {
    return http_request("127.0.0.1", server.port(), "POST", path, body.dump(), {{"content-type", "application/json"}});
  };
  auto models = http_request("127.0.0.1", server.port(), "GET", "/v1/models", "");
  BOOST_TEST(json::parse(models.body)["data"][0]["max_model_len"] == 512);
  // llama2.c `run -t 0 -i "Once upon a time"` continues with this (tests/data/stories260K).
  auto r = post("/v1/completions", {{"prompt", "Once upon a time"}, {"max_tokens", 12}, {"temperature", 0}});
  BOOST_REQUIRE_EQUAL(r.status, 200);
  auto j = json::parse(r.body);
  BOOST_TEST(j["choices"][0]["text"].get<std::string>() == ", there was a little girl named Lily. She");
  BOOST_TEST(j["usage"]["prompt_tokens"] == 5);
  auto c = post("/v1/chat/completions", {{"messages", {{{"role", "user"}, {"content", "Once upon a time"}}}},
                                         {"max_tokens", 12}, {"temperature", 0}});
  BOOST_REQUIRE_EQUAL(c.status, 200);
  BOOST_TEST(json::parse(c.body)["choices"][0]["message"]["content"].get<std::string>() ==
             ", there was a little girl named Lily. She");
  auto s = post("/v1/completions", {{"prompt", "Lily"}, {"max_tokens", 20}, {"temperature", 0.8}, {"seed", 7}});
  auto s2 = post("/v1/completions", {{"prompt", "Lily"}, {"max_tokens", 20}, {"temperature", 0.8}, {"seed", 7}});
  BOOST_TEST(json::parse(s.body)["choices"][0]["text"] == json::parse(s2.body)["choices"][0]["text"]);
}

// generation_config.json's sampling fields are the defaults of requests that leave them unset (vLLM's
// generation-config auto); a request's own values win.
BOOST_AUTO_TEST_CASE(generation_config_gives_request_defaults) {
  ModelCopy model(R"({"bos_token_id": 1, "eos_token_id": 2, "temperature": 0.0, "max_new_tokens": 5})");
  ServerProcess server({"--backend", "cpu", "--log-level", "warn", "--model", model.dir.string()});
  auto dflt = post_json(server, "/v1/completions", {{"prompt", "Once upon a time"}});
  auto greedy5 = post_json(server, "/v1/completions", {{"prompt", "Once upon a time"}, {"max_tokens", 5}, {"temperature", 0}});
  BOOST_TEST(dflt["usage"]["completion_tokens"] == 5);
  BOOST_TEST(dflt["choices"][0]["text"] == greedy5["choices"][0]["text"]);
  auto own = post_json(server, "/v1/completions", {{"prompt", "Once upon a time"}, {"max_tokens", 12}});
  BOOST_TEST(own["choices"][0]["text"].get<std::string>() == ", there was a little girl named Lily. She");
  auto chat = post_json(server, "/v1/chat/completions", {{"messages", {{{"role", "user"}, {"content", "Once upon a time"}}}}});
  BOOST_TEST(chat["usage"]["completion_tokens"] == 5);  // chat's default (the rest of the context) is capped too
  // Sampled, not greedy, when the request asks for it: seeded runs agree with each other.
  json hot = {{"prompt", "Lily"}, {"temperature", 1.0}, {"seed", 3}, {"max_tokens", 20}};
  BOOST_TEST(post_json(server, "/v1/completions", hot)["choices"][0]["text"] ==
             post_json(server, "/v1/completions", hot)["choices"][0]["text"]);
}

// skip-tokenizer-init: no tokenizer; token-id prompts only, replies carry token ids and empty text. The
// ids are those the tokenizer-backed server generates for the same prompt.
BOOST_AUTO_TEST_CASE(skip_tokenizer_init_serves_token_ids) {
  std::vector<std::int32_t> prompt, want;
  {
    ServerProcess with({"--backend", "cpu", "--log-level", "warn"});
    prompt = post_json(with, "/tokenize", {{"prompt", "Once upon a time"}})["tokens"].get<std::vector<std::int32_t>>();
    auto r = post_json(with, "/v1/completions",
                       {{"prompt", prompt}, {"max_tokens", 12}, {"temperature", 0}, {"return_token_ids", true}});
    want = r["choices"][0]["token_ids"].get<std::vector<std::int32_t>>();
  }
  ServerProcess server({"--backend", "cpu", "--log-level", "warn", "--skip-tokenizer-init"});
  auto r = post_json(server, "/v1/completions", {{"prompt", prompt}, {"max_tokens", 12}, {"temperature", 0}});
  BOOST_TEST(r["choices"][0]["text"] == "");
  BOOST_TEST(r["choices"][0]["token_ids"].get<std::vector<std::int32_t>>() == want);
  BOOST_TEST(want.size() == 12u);
  auto lp = post_json(server, "/v1/completions", {{"prompt", prompt}, {"max_tokens", 2}, {"temperature", 0}, {"logprobs", 1}});
  BOOST_TEST(lp["choices"][0]["logprobs"]["tokens"][0] == "token_id:" + std::to_string(want[0]));
  auto text = post_json(server, "/v1/completions", {{"prompt", "Once upon a time"}}, 400);
  BOOST_TEST(text["error"]["param"] == "prompt");
  BOOST_TEST(text["error"]["message"].get<std::string>().find("skip-tokenizer-init") != std::string::npos);
  auto chat = post_json(server, "/v1/chat/completions", {{"messages", {{{"role", "user"}, {"content", "hi"}}}}}, 400);
  BOOST_TEST(chat["error"]["param"] == "messages");
  post_json(server, "/v1/completions", {{"prompt", {1, 2}}, {"stop", "x"}}, 400);
  post_json(server, "/tokenize", {{"prompt", "hi"}}, 400);
  post_json(server, "/v1/completions", {{"prompt", {600}}}, 400);  // outside the model's 512 ids
}

// load-format dummy for DeepSeek: a tiny V3 config with no checkpoint serves completions (token ids, as
// the directory has no tokenizer).
BOOST_AUTO_TEST_CASE(deepseek_dummy_weights_serve) {
  ServerProcess server({"--backend", "cpu", "--log-level", "warn", "--model", kSource + "/tests/data/deepseek_tiny/v3_bf16",
                        "--load-format", "dummy", "--skip-tokenizer-init", "--max-model-len", "256",
                        "--max-num-seqs", "4"});
  auto r = post_json(server, "/v1/completions",
                     {{"prompt", {1, 5, 9, 200}}, {"max_tokens", 6}, {"temperature", 0}, {"ignore_eos", true}});
  BOOST_TEST(r["choices"][0]["token_ids"].size() == 6u);
  BOOST_TEST(r["usage"]["prompt_tokens"] == 4);
  auto again = post_json(server, "/v1/completions",
                         {{"prompt", {1, 5, 9, 200}}, {"max_tokens", 6}, {"temperature", 0}, {"ignore_eos", true}});
  BOOST_TEST(again["choices"][0]["token_ids"] == r["choices"][0]["token_ids"]);
}

// tensor-parallel-size 2 on the cpu backend: each rank holds half the heads and MLP columns and they
// all-reduce in memory; greedy output is the single-rank one.
BOOST_AUTO_TEST_CASE(tensor_parallel_ranks_split_the_model) {
  ServerProcess server({"--backend", "cpu", "--log-level", "warn", "--tensor-parallel-size", "2"});
  auto r = post_json(server, "/v1/completions", {{"prompt", "Once upon a time"}, {"max_tokens", 12}, {"temperature", 0}});
  BOOST_TEST(r["choices"][0]["text"].get<std::string>() == ", there was a little girl named Lily. She");
}
