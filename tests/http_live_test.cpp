#define BOOST_TEST_MODULE http_live
#include <boost/test/unit_test.hpp>

#include "tests/support/http_client.hpp"
#include "tests/support/server_process.hpp"

#include <nlohmann/json.hpp>

#include <csignal>
#include <fstream>
#include <thread>

using namespace troupe::testing;
using nlohmann::json;

namespace {
const std::string kHost = "127.0.0.1";

struct Live {
  ServerProcess server{{"--backend", "sim", "--tensor-parallel-size", "2", "--log-level", "warn", "--served-model-name", "sim-model",
                        "--max-model-len", "512"}};
  HttpResponse get(const std::string& path) { return http_request(kHost, server.port(), "GET", path); }
  HttpResponse post(const std::string& path, const json& body) {
    return http_request(kHost, server.port(), "POST", path, body.dump(), {{"content-type", "application/json"}});
  }
};

std::string concat_stream(const std::vector<std::string>& events, bool chat, json* last_usage = nullptr) {
  std::string text;
  for (auto& e : events) {
    if (e == "[DONE]") continue;
    auto j = json::parse(e);
    if (j.contains("usage") && last_usage) *last_usage = j["usage"];
    for (auto& c : j["choices"]) text += chat ? c["delta"].value("content", "") : c["text"].get<std::string>();
  }
  return text;
}
}  // namespace

BOOST_FIXTURE_TEST_SUITE(live_server, Live)

BOOST_AUTO_TEST_CASE(service_endpoints) {
  BOOST_CHECK_EQUAL(get("/health").status, 200);
  BOOST_CHECK_EQUAL(get("/ping").status, 200);
  auto v = get("/version");
  BOOST_CHECK_EQUAL(v.status, 200);
  BOOST_CHECK(json::parse(v.body).contains("version"));
  auto m = json::parse(get("/v1/models").body);
  BOOST_CHECK_EQUAL(m["object"], "list");
  BOOST_CHECK_EQUAL(m["data"][0]["id"], "sim-model");
  BOOST_CHECK_EQUAL(m["data"][0]["max_model_len"], 512);
}

BOOST_AUTO_TEST_CASE(completions_whole_and_streamed_agree) {
  auto r = post("/v1/completions", {{"model", "sim-model"}, {"prompt", "Tell me"}, {"max_tokens", 40}});
  BOOST_REQUIRE_EQUAL(r.status, 200);
  auto j = json::parse(r.body);
  BOOST_CHECK_EQUAL(j["object"], "text_completion");
  BOOST_CHECK(j["id"].get<std::string>().rfind("cmpl-", 0) == 0);
  BOOST_CHECK_EQUAL(j["choices"][0]["finish_reason"], "length");
  BOOST_CHECK_EQUAL(j["usage"]["completion_tokens"], 40);
  BOOST_CHECK_EQUAL(j["usage"]["prompt_tokens"], 7);  // the sim model's vocabulary is bytes
  std::string whole = j["choices"][0]["text"];
  BOOST_CHECK_EQUAL(whole.size(), 40u);

  auto s = post("/v1/completions", {{"prompt", "Tell me"}, {"max_tokens", 40}, {"stream", true},
                                    {"stream_options", {{"include_usage", true}}}});
  BOOST_REQUIRE_EQUAL(s.status, 200);
  BOOST_CHECK(s.headers["content-type"].find("text/event-stream") != std::string::npos);
  auto events = sse_events(s.body);
  BOOST_REQUIRE_GE(events.size(), 3u);
  BOOST_CHECK_EQUAL(events.back(), "[DONE]");
  json usage;
  BOOST_CHECK_EQUAL(concat_stream(events, false, &usage), whole);  // tokens are deterministic
  BOOST_CHECK_EQUAL(usage["completion_tokens"], 40);
  auto fin = json::parse(events[events.size() - 3]);
  BOOST_CHECK_EQUAL(fin["choices"][0]["finish_reason"], "length");
}

BOOST_AUTO_TEST_CASE(chat_whole_and_streamed) {
  json msgs = json::array({{{"role", "system"}, {"content", "be brief"}}, {{"role", "user"}, {"content", "hi"}}});
  auto r = post("/v1/chat/completions", {{"messages", msgs}, {"max_tokens", 12}});
  BOOST_REQUIRE_EQUAL(r.status, 200);
  auto j = json::parse(r.body);
  BOOST_CHECK_EQUAL(j["object"], "chat.completion");
  BOOST_CHECK_EQUAL(j["choices"][0]["message"]["role"], "assistant");
  std::string whole = j["choices"][0]["message"]["content"];
  BOOST_CHECK_EQUAL(whole.size(), 12u);
  auto s = post("/v1/chat/completions", {{"messages", msgs}, {"max_tokens", 12}, {"stream", true}});
  auto events = sse_events(s.body);
  BOOST_REQUIRE_GE(events.size(), 3u);
  auto first = json::parse(events[0]);
  BOOST_CHECK_EQUAL(first["object"], "chat.completion.chunk");
  BOOST_CHECK_EQUAL(first["choices"][0]["delta"]["role"], "assistant");
  BOOST_CHECK_EQUAL(concat_stream(events, true), whole);
  BOOST_CHECK_EQUAL(events.back(), "[DONE]");
}

BOOST_AUTO_TEST_CASE(stop_strings_never_leak_whole_or_streamed) {
  auto base = json::parse(post("/v1/completions", {{"prompt", "x"}, {"max_tokens", 60}}).body);
  std::string text = base["choices"][0]["text"];
  std::string stop = text.substr(20, 4);  // spans several streamed chunks (one byte per token)
  auto expect = text.substr(0, text.find(stop));
  auto r = json::parse(post("/v1/completions", {{"prompt", "x"}, {"max_tokens", 60}, {"stop", stop}}).body);
  BOOST_CHECK_EQUAL(r["choices"][0]["text"], expect);
  BOOST_CHECK_EQUAL(r["choices"][0]["finish_reason"], "stop");
  BOOST_CHECK_EQUAL(r["choices"][0]["stop_reason"], stop);
  auto s = post("/v1/completions", {{"prompt", "x"}, {"max_tokens", 60}, {"stop", json::array({stop})}, {"stream", true}});
  BOOST_CHECK_EQUAL(concat_stream(sse_events(s.body), false), expect);
}

BOOST_AUTO_TEST_CASE(errors_are_openai_json_with_the_right_status) {
  auto check = [](const HttpResponse& r, int status, const std::string& param = "") {
    BOOST_CHECK_EQUAL(r.status, status);
    auto j = json::parse(r.body);
    BOOST_REQUIRE(j.contains("error"));
    BOOST_CHECK_EQUAL(j["error"]["code"], status);
    if (!param.empty()) BOOST_CHECK_EQUAL(j["error"]["param"], param);
  };
  check(http_request(kHost, server.port(), "POST", "/v1/completions", "{\"prompt\": "), 400);
  check(post("/v1/completions", {{"prompt", "x"}, {"max_tokens", "many"}}), 400, "max_tokens");
  check(post("/v1/completions", {{"prompt", "x"}, {"max_tokens", 600}}), 400, "max_tokens");
  check(post("/v1/completions", {{"prompt", std::string(600, 'a')}}), 400, "prompt");
  check(post("/v1/completions", {{"model", "gpt-4"}, {"prompt", "x"}}), 404, "model");
  check(post("/v1/chat/completions", {{"messages", "hello"}}), 400, "messages");
  check(get("/v1/nothing"), 404);
  check(get("/v1/completions"), 405);
  check(http_request(kHost, server.port(), "POST", "/v1/completions", std::string(40u << 20, 'x')), 413);
  BOOST_CHECK_EQUAL(get("/health").status, 200);  // still up
}

BOOST_AUTO_TEST_CASE(a_client_that_disconnects_mid_stream_leaves_the_server_serving) {
  json body = {{"prompt", "x"}, {"max_tokens", 400}, {"stream", true}};
  {
    HttpStream st(kHost, server.port(), "POST", "/v1/completions", body.dump());
    BOOST_REQUIRE_EQUAL(st.status(), 200);
    BOOST_REQUIRE(st.next_chunk(10));
    st.close();
  }
  auto r = post("/v1/completions", {{"prompt", "y"}, {"max_tokens", 5}});
  BOOST_CHECK_EQUAL(r.status, 200);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_CASE(sigterm_finishes_streams_in_flight_then_exits_zero) {
  // ~10 ms a step: a 100-token stream takes about a second.
  ServerProcess server({"--backend", "sim", "--sim-step-us", "10000", "--log-level", "warn"});
  HttpStream st(kHost, server.port(), "POST", "/v1/completions",
                json({{"prompt", "x"}, {"max_tokens", 100}, {"stream", true}}).dump());
  BOOST_REQUIRE_EQUAL(st.status(), 200);
  BOOST_REQUIRE(st.next_chunk(10));
  std::string rest;
  int rc = -2;  // Boost.Test checks stay on this thread
  std::thread stopper([&] { rc = server.stop(SIGTERM, 30); });
  while (auto c = st.next_chunk(20)) rest += *c;
  stopper.join();
  BOOST_CHECK_EQUAL(rc, 0);
  BOOST_CHECK(rest.find("\"finish_reason\":\"length\"") != std::string::npos);
  BOOST_CHECK(rest.find("data: [DONE]") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(sigterm_past_the_grace_period_ends_streams_with_an_error) {
  ServerProcess server({"--backend", "sim", "--sim-step-us", "10000", "--shutdown-grace-seconds", "0.3",
                        "--log-level", "warn"});
  HttpStream st(kHost, server.port(), "POST", "/v1/completions",
                json({{"prompt", "x"}, {"max_tokens", 3000}, {"stream", true}}).dump());
  BOOST_REQUIRE_EQUAL(st.status(), 200);
  BOOST_REQUIRE(st.next_chunk(10));
  auto t0 = std::chrono::steady_clock::now();
  std::string rest;
  int rc = -2;  // Boost.Test checks stay on this thread
  std::thread stopper([&] { rc = server.stop(SIGTERM, 30); });
  while (auto c = st.next_chunk(20)) rest += *c;
  stopper.join();
  BOOST_CHECK_EQUAL(rc, 0);
  BOOST_CHECK_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 10.0);
  BOOST_CHECK(rest.find("shutting down") != std::string::npos);
  BOOST_CHECK(rest.find("data: [DONE]") != std::string::npos);
}

// With a real model directory the frontend tokenizes with its tokenizer.json and renders its chat
// template: /tokenize must give HF tokenizers' ids, and a conversation must tokenize exactly as the
// jinja2 rendering of it (golden data from tests/data, made by the reference implementations).
BOOST_AUTO_TEST_CASE(tokenize_matches_hf_tokenizers_and_jinja2_through_the_api) {
  std::string data = TROUPE_SOURCE_DIR "/tests/data";
  ServerProcess server({"--backend", "sim", "--model", data + "/tokenizer/deepseek-r1", "--served-model-name", "r1", "--log-level", "warn",
                        "--max-model-len", "100000", "--reasoning-parser", "deepseek_r1"});
  auto post = [&](const json& body) {
    auto r = http_request(kHost, server.port(), "POST", "/tokenize", body.dump());
    BOOST_REQUIRE_MESSAGE(r.status == 200, body.dump() + " -> " + r.body);
    return json::parse(r.body);
  };
  std::ifstream tok(data + "/tokenizer/golden/deepseek_r1.jsonl");
  std::string line;
  int n = 0;
  while (std::getline(tok, line)) {
    auto g = json::parse(line);
    auto r = post({{"prompt", g["text"]}, {"add_special_tokens", g["add_special_tokens"]}});
    BOOST_CHECK_EQUAL(r["tokens"], g["ids"]);
    BOOST_CHECK_EQUAL(r["count"], g["ids"].size());
    ++n;
  }
  BOOST_CHECK_GT(n, 400);
  std::ifstream chats(data + "/chat_template/golden.jsonl");
  int m = 0;
  while (std::getline(chats, line)) {
    auto g = json::parse(line);
    auto ctx = g["context"];
    // The API refuses an empty conversation (as OpenAI's does) before any template sees it.
    if (g["template"] != "deepseek_r1" || !g.contains("expected") || ctx["messages"].empty()) continue;
    json body = {{"messages", ctx["messages"]}, {"add_generation_prompt", ctx.value("add_generation_prompt", false)}};
    if (ctx.contains("tools")) body["tools"] = ctx["tools"];
    auto via_template = post(body);
    auto via_text = post({{"prompt", g["expected"]}, {"add_special_tokens", false}});
    BOOST_TEST_CONTEXT(g["name"]) { BOOST_CHECK_EQUAL(via_template["tokens"], via_text["tokens"]); }
    ++m;
  }
  BOOST_CHECK_GT(m, 20);
  auto d = http_request(kHost, server.port(), "POST", "/detokenize", json({{"tokens", {0, 19923, 2058}}}).dump());
  BOOST_CHECK_EQUAL(json::parse(d.body)["prompt"], "<｜begin▁of▁sentence｜>Hello world");
  // The R1 template primes <think>; the sim model never closes it, so everything is reasoning.
  auto c = http_request(kHost, server.port(), "POST", "/v1/chat/completions",
                        json({{"messages", {{{"role", "user"}, {"content", "hi"}}}}, {"max_tokens", 8}}).dump());
  auto msg = json::parse(c.body)["choices"][0]["message"];
  BOOST_CHECK(msg["content"].is_null());
  BOOST_CHECK(msg["reasoning_content"].is_string());
}
