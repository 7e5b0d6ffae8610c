#define BOOST_TEST_MODULE openai_request
#include <boost/test/unit_test.hpp>

#include "actors/http_frontend/openai_request.hpp"

using namespace troupe;

static ApiError err(const std::string& body, ApiKind k = ApiKind::completion) {
  auto r = parse_generation_request(body, k);
  BOOST_REQUIRE(std::holds_alternative<ApiError>(r));
  return std::get<ApiError>(r);
}
static GenerationRequest ok(const std::string& body, ApiKind k = ApiKind::completion) {
  auto r = parse_generation_request(body, k);
  if (auto* e = std::get_if<ApiError>(&r)) BOOST_FAIL("unexpected error: " + e->message);
  return std::get<GenerationRequest>(r);
}

BOOST_AUTO_TEST_CASE(completion_fields) {
  auto r = ok(R"({"model":"m","prompt":"hi","max_tokens":5,"stream":true,"stream_options":{"include_usage":true},
                 "temperature":0,"stop":["\n","END"],"seed":7,"ignore_eos":true,"echo":true})");
  BOOST_CHECK_EQUAL(r.prompt_text, "hi");
  BOOST_CHECK_EQUAL(*r.max_tokens, 5u);
  BOOST_CHECK(r.stream && r.include_usage && r.ignore_eos && r.echo);
  BOOST_CHECK_EQUAL(r.stop.size(), 2u);
  BOOST_CHECK_EQUAL(*r.seed, 7u);
  auto ids = ok(R"({"prompt":[1,2,3]})");
  BOOST_CHECK(ids.prompt_is_ids);
  BOOST_CHECK_EQUAL(ids.prompt_ids.size(), 3u);
  BOOST_CHECK(!ids.max_tokens);
}

BOOST_AUTO_TEST_CASE(chat_fields) {
  auto r = ok(R"({"messages":[{"role":"system","content":"be brief"},{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}],
                 "max_completion_tokens":9})", ApiKind::chat);
  BOOST_REQUIRE_EQUAL(r.chat_context["messages"].size(), 2u);
  BOOST_CHECK_EQUAL(r.chat_context["messages"][1]["content"], "ab");
  BOOST_CHECK_EQUAL(r.chat_context["add_generation_prompt"], true);
  BOOST_CHECK_EQUAL(*r.max_tokens, 9u);
}

BOOST_AUTO_TEST_CASE(bad_input_names_the_field) {
  BOOST_CHECK_EQUAL(err("{not json").message, "the request body is not valid JSON");
  BOOST_CHECK_EQUAL(err("[1,2]").status, 400);
  BOOST_CHECK_EQUAL(err(R"({"prompt":"x","max_tokens":"5"})").param, "max_tokens");
  BOOST_CHECK_EQUAL(err(R"({"prompt":"x","max_tokens":-1})").param, "max_tokens");
  BOOST_CHECK_EQUAL(err(R"({"prompt":"x","max_tokens":1e300})").param, "max_tokens");
  BOOST_CHECK_EQUAL(err(R"({"prompt":"x","max_tokens":99999999999999999999})").param, "max_tokens");
  BOOST_CHECK_EQUAL(err(R"({"prompt":"x","temperature":-1})").param, "temperature");
  BOOST_CHECK_EQUAL(err(R"({"prompt":"x","top_p":0})").param, "top_p");
  BOOST_CHECK_EQUAL(err(R"({"prompt":"x","stream":"yes"})").param, "stream");
  BOOST_CHECK_EQUAL(err(R"({"prompt":"x","stop":[1]})").param, "stop");
  BOOST_CHECK_EQUAL(err(R"({"prompt":""})").param, "prompt");
  BOOST_CHECK_EQUAL(err(R"({"prompt":[-1]})").param, "prompt");
  BOOST_CHECK_EQUAL(err(R"({"max_tokens":3})").param, "prompt");
  BOOST_CHECK_EQUAL(err(R"({"model":5,"prompt":"x"})").param, "model");
  BOOST_CHECK_EQUAL(err(R"({"messages":[]})", ApiKind::chat).param, "messages");
  BOOST_CHECK_EQUAL(err(R"({"messages":[{"content":"x"}]})", ApiKind::chat).param, "messages");
  auto e = err(R"({"prompt":"x","n":0})");
  BOOST_CHECK_EQUAL(e.param, "n");
  BOOST_CHECK_EQUAL(ok(R"({"prompt":"x","n":3})").n, 3u);
  BOOST_CHECK(e.json().find(R"("code":400)") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(tokenize_and_detokenize_bodies) {
  auto t = std::get<TokenizeRequest>(parse_tokenize_request(R"({"prompt":"hello","add_special_tokens":false})"));
  BOOST_CHECK_EQUAL(t.prompt, "hello");
  BOOST_CHECK(t.add_special_tokens && !*t.add_special_tokens);
  auto c = std::get<TokenizeRequest>(parse_tokenize_request(R"({"messages":[{"role":"user","content":"x"}]})"));
  BOOST_CHECK(c.is_chat);
  BOOST_CHECK(!c.add_special_tokens);
  BOOST_CHECK_EQUAL(std::get<ApiError>(parse_tokenize_request(R"({"prompt":3})")).param, "prompt");
  auto d = std::get<DetokenizeRequest>(parse_detokenize_request(R"({"tokens":[1,2]})"));
  BOOST_CHECK_EQUAL(d.tokens.size(), 2u);
  BOOST_CHECK_EQUAL(std::get<ApiError>(parse_detokenize_request(R"({"tokens":"x"})")).param, "tokens");
}

// Found by fuzz_request: a content part whose "type" is not a string threw out of the parser (an abort).
BOOST_AUTO_TEST_CASE(content_part_with_a_non_string_type_is_a_400) {
  const std::string body =
      R"({"messages":[{"role":"user","content":[{"type":[1,2,3],"ext":"hi"}]}],"tools":[],"chat_template_kwargs":{"a":1}})";
  const auto t = parse_tokenize_request(body);
  BOOST_REQUIRE(std::holds_alternative<ApiError>(t));
  BOOST_CHECK_EQUAL(std::get<ApiError>(t).status, 400);
  BOOST_CHECK_EQUAL(std::get<ApiError>(t).param, "messages");
  const ApiError e = err(body, ApiKind::chat);
  BOOST_CHECK_EQUAL(e.status, 400);
  BOOST_CHECK_EQUAL(e.param, "messages");
}

BOOST_AUTO_TEST_CASE(logprobs_fields) {
  BOOST_CHECK(!ok(R"({"prompt":"hi"})").logprobs);
  BOOST_CHECK_EQUAL(*ok(R"({"prompt":"hi","logprobs":3})").logprobs, 3);
  BOOST_CHECK_EQUAL(*ok(R"({"prompt":"hi","logprobs":0})").logprobs, 0);
  BOOST_CHECK(!ok(R"({"prompt":"hi","logprobs":null})").logprobs);
  BOOST_CHECK_EQUAL(err(R"({"prompt":"hi","logprobs":21})").param, "logprobs");
  BOOST_CHECK_EQUAL(err(R"({"prompt":"hi","logprobs":-1})").param, "logprobs");
  const char* msgs = R"("messages":[{"role":"user","content":"x"}])";
  auto chat = [&](const std::string& extra) { return "{" + std::string(msgs) + extra + "}"; };
  BOOST_CHECK(!ok(chat(R"(,"logprobs":false)"), ApiKind::chat).logprobs);
  BOOST_CHECK_EQUAL(*ok(chat(R"(,"logprobs":true)"), ApiKind::chat).logprobs, 0);
  BOOST_CHECK_EQUAL(*ok(chat(R"(,"logprobs":true,"top_logprobs":5)"), ApiKind::chat).logprobs, 5);
  BOOST_CHECK(!ok(chat(R"(,"top_logprobs":0)"), ApiKind::chat).logprobs);
  BOOST_CHECK_EQUAL(err(chat(R"(,"top_logprobs":2)"), ApiKind::chat).param, "top_logprobs");
  BOOST_CHECK_EQUAL(err(chat(R"(,"logprobs":true,"top_logprobs":21)"), ApiKind::chat).param, "top_logprobs");
  BOOST_CHECK_EQUAL(err(chat(R"(,"logprobs":2)"), ApiKind::chat).param, "logprobs");
  auto ids = ok(R"({"prompt":"hi","return_token_ids":true,"return_tokens_as_token_ids":true})");
  BOOST_CHECK(ids.return_token_ids && ids.return_tokens_as_token_ids);
}

// vLLM's prompt_logprobs: an int in [0, 20] on both endpoints; N > 0 cannot stream; completions with echo
// and logprobs take it from logprobs.
BOOST_AUTO_TEST_CASE(prompt_logprobs_field) {
  BOOST_CHECK(!ok(R"({"prompt":"hi"})").prompt_logprobs);
  BOOST_CHECK(!ok(R"({"prompt":"hi","prompt_logprobs":null})").prompt_logprobs);
  BOOST_CHECK_EQUAL(*ok(R"({"prompt":"hi","prompt_logprobs":0})").prompt_logprobs, 0);
  BOOST_CHECK_EQUAL(*ok(R"({"prompt":"hi","prompt_logprobs":20})").prompt_logprobs, 20);
  BOOST_CHECK_EQUAL(err(R"({"prompt":"hi","prompt_logprobs":21})").param, "prompt_logprobs");
  BOOST_CHECK_EQUAL(err(R"({"prompt":"hi","prompt_logprobs":-1})").param, "prompt_logprobs");
  BOOST_CHECK_EQUAL(err(R"({"prompt":"hi","prompt_logprobs":"2"})").param, "prompt_logprobs");
  BOOST_CHECK_EQUAL(err(R"({"prompt":"hi","prompt_logprobs":2,"stream":true})").param, "prompt_logprobs");
  BOOST_CHECK_EQUAL(*ok(R"({"prompt":"hi","prompt_logprobs":0,"stream":true})").prompt_logprobs, 0);
  BOOST_CHECK_EQUAL(*ok(R"({"prompt":"hi","echo":true,"logprobs":2})").prompt_logprobs, 2);
  BOOST_CHECK_EQUAL(*ok(R"({"prompt":"hi","echo":true,"logprobs":2,"prompt_logprobs":1})").prompt_logprobs, 1);
  BOOST_CHECK(!ok(R"({"prompt":"hi","echo":true})").prompt_logprobs);
  const char* chat = R"({"messages":[{"role":"user","content":"x"}],"prompt_logprobs":3})";
  BOOST_CHECK_EQUAL(*ok(chat, ApiKind::chat).prompt_logprobs, 3);
}

// generation_config.json defaults fill only what the body leaves unset; the body always wins.
BOOST_AUTO_TEST_CASE(model_generation_defaults_fill_unset_fields) {
  GenerationDefaults d;
  d.temperature = 0.6f;
  d.top_p = 0.9f;
  d.top_k = 20;
  d.min_p = 0.1f;
  d.repetition_penalty = 1.2f;
  auto parse = [&](const std::string& body) {
    auto r = parse_generation_request(body, ApiKind::completion, d);
    BOOST_REQUIRE(std::holds_alternative<GenerationRequest>(r));
    return std::get<GenerationRequest>(r);
  };
  auto unset = parse(R"({"prompt":"hi"})");
  BOOST_TEST(unset.temperature == 0.6f);
  BOOST_TEST(unset.top_p == 0.9f);
  BOOST_TEST(unset.top_k == 20);
  BOOST_TEST(unset.min_p == 0.1f);
  BOOST_TEST(unset.repetition_penalty == 1.2f);
  auto given = parse(R"({"prompt":"hi","temperature":0,"top_p":1,"top_k":-1,"min_p":0,"repetition_penalty":1})");
  BOOST_TEST(given.temperature == 0.0f);
  BOOST_TEST(given.top_p == 1.0f);
  BOOST_TEST(given.top_k == -1);
  BOOST_TEST(given.min_p == 0.0f);
  BOOST_TEST(given.repetition_penalty == 1.0f);
  auto null_is_unset = parse(R"({"prompt":"hi","temperature":null})");
  BOOST_TEST(null_is_unset.temperature == 0.6f);
  BOOST_TEST(ok(R"({"prompt":"hi"})").temperature == 1.0f);  // no model defaults: the API's
}
