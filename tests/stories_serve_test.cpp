#define BOOST_TEST_MODULE stories_serve
// `troupe serve` with no model: the embedded stories260K on the cpu backend, end to end over HTTP.
#include <boost/test/unit_test.hpp>

#include "tests/support/http_client.hpp"
#include "tests/support/server_process.hpp"

#include <nlohmann/json.hpp>

using namespace troupe::testing;
using nlohmann::json;

BOOST_AUTO_TEST_CASE(default_model_continues_a_story_as_llama2c_does) {
  ServerProcess server({"--backend", "cpu", "--log-level", "warn", "--max-model-len", "512"});
  auto post = [&](const std::string& path, const json& body) {
    return http_request("127.0.0.1", server.port(), "POST", path, body.dump(), {{"content-type", "application/json"}});
  };
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
