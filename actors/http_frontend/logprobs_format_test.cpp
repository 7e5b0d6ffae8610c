#define BOOST_TEST_MODULE logprobs_format
#include <boost/test/unit_test.hpp>

#include "actors/http_frontend/logprobs_format.hpp"

using namespace troupe;

namespace {
const ByteCodec kCodec;
// Sampled 'b' (-0.5) with top 2 {'a': -0.2, 'b': -0.5}; then sampled 'c' (-3), outside its top 1 {'a': -0.1}.
std::vector<GeneratedToken> tokens() {
  return {{'b', -0.5f, {{'a', -0.2f}, {'b', -0.5f}}}, {'c', -3.0f, {{'a', -0.1f}}}};
}
}  // namespace

BOOST_AUTO_TEST_CASE(candidates_put_the_sampled_token_first) {
  auto c = logprob_candidates(tokens()[0]);
  BOOST_REQUIRE_EQUAL(c.size(), 2u);
  BOOST_CHECK_EQUAL(c[0].first, 'b');
  BOOST_CHECK_EQUAL(c[1].first, 'a');
}

BOOST_AUTO_TEST_CASE(completion_shape) {
  LogprobFormatter f(kCodec, false);
  auto j = f.completion(tokens(), 2, -1, 4);
  BOOST_CHECK_EQUAL(j["tokens"].dump(), R"(["b","c"])");
  BOOST_CHECK_EQUAL(j["text_offset"].dump(), "[4,5]");
  BOOST_CHECK_EQUAL(j["token_logprobs"][1].get<float>(), -3.0f);
  BOOST_CHECK_EQUAL(j["top_logprobs"][0].size(), 2u);
  BOOST_CHECK_EQUAL(j["top_logprobs"][1].size(), 2u);  // the sampled token plus the top 1
  BOOST_CHECK_EQUAL(j["top_logprobs"][1]["a"].get<float>(), -0.1f);
  LogprobFormatter ids(kCodec, true);
  BOOST_CHECK_EQUAL(ids.completion(tokens(), 0, -1, 0)["tokens"][0], "token_id:98");
}

BOOST_AUTO_TEST_CASE(chat_shape_takes_the_first_n_candidates) {
  LogprobFormatter f(kCodec, false);
  auto j = f.chat(tokens(), 1, -1)["content"];
  BOOST_REQUIRE_EQUAL(j.size(), 2u);
  BOOST_CHECK_EQUAL(j[0]["token"], "b");
  BOOST_CHECK_EQUAL(j[0]["bytes"].dump(), "[98]");
  BOOST_REQUIRE_EQUAL(j[1]["top_logprobs"].size(), 1u);
  BOOST_CHECK_EQUAL(j[1]["top_logprobs"][0]["token"], "c");  // vLLM: the dict's first entry is the sampled one
  BOOST_CHECK(f.chat(tokens(), 0, -1)["content"][0]["top_logprobs"].empty());
}

BOOST_AUTO_TEST_CASE(clamps_and_partial_utf8) {
  LogprobFormatter f(kCodec, false);
  std::vector<GeneratedToken> t = {{0xE2, -1e30f, {}}};
  auto j = f.completion(t, 0, -1, 0);
  BOOST_CHECK_EQUAL(j["token_logprobs"][0].get<float>(), -9999.0f);
  BOOST_CHECK_EQUAL(j["tokens"][0], "\xEF\xBF\xBD");  // a lone lead byte shows as U+FFFD
  BOOST_CHECK_EQUAL(utf8_length("h\xC3\xA9"), 2u);
  std::vector<GeneratedToken> none = {{'x', std::nullopt, {}}};
  BOOST_CHECK(f.completion(none, 1, -1, 0)["token_logprobs"][0].is_null());
}

// vLLM's prompt_logprobs: [null, {id: {logprob, rank, decoded_token}}, ...]; the prompt token first with
// its own rank, then the top N ranked 1..N; a prompt token among the top N takes that entry's values.
BOOST_AUTO_TEST_CASE(prompt_logprobs_shape) {
  LogprobFormatter f(kCodec, true);  // token_id:N naming does not touch decoded_token
  std::vector<std::int32_t> prompt = {'a', 'b', 'c', 'd'};
  std::vector<PromptTokenLogprob> e = {{-2.5f, 3, {{'x', -0.5f}, {'y', -1.0f}}},  // 'b': rank 3, outside the top 2
                                       {-0.1f, 1, {{'c', -0.1f}, {'z', -3.0f}}},  // 'c': the most likely
                                       {-1e30f, 7, {}}};                          // 'd': N = 0, clamped
  auto j = f.prompt_logprobs(prompt, e);
  BOOST_REQUIRE_EQUAL(j.size(), 4u);
  BOOST_CHECK(j[0].is_null());
  BOOST_REQUIRE_EQUAL(j[1].size(), 3u);
  BOOST_CHECK_EQUAL(j[1]["98"]["rank"], 3);
  BOOST_CHECK_EQUAL(j[1]["98"]["logprob"].get<float>(), -2.5f);
  BOOST_CHECK_EQUAL(j[1]["98"]["decoded_token"], "b");
  BOOST_CHECK_EQUAL(j[1]["120"]["rank"], 1);
  BOOST_CHECK_EQUAL(j[1]["121"]["rank"], 2);
  BOOST_CHECK_EQUAL(j[1]["121"]["logprob"].get<float>(), -1.0f);
  BOOST_REQUIRE_EQUAL(j[2].size(), 2u);  // the prompt token once
  BOOST_CHECK_EQUAL(j[2]["99"]["rank"], 1);
  BOOST_REQUIRE_EQUAL(j[3].size(), 1u);
  BOOST_CHECK_EQUAL(j[3]["100"]["logprob"].get<float>(), -9999.0f);
  BOOST_CHECK_EQUAL(j[3]["100"].size(), 3u);
  // Missing entries (a part of the prompt the engine did not score) are null; an empty prompt is [].
  auto short_ = f.prompt_logprobs(prompt, {e[0]});
  BOOST_CHECK(short_[2].is_null() && short_[3].is_null());
  BOOST_CHECK_EQUAL(f.prompt_logprobs({}, {}).dump(), "[]");
  BOOST_CHECK_EQUAL(f.prompt_logprobs({'a'}, {}).dump(), "[null]");
  auto no_tokenizer = make_token_id_codec(256, -1);  // skip-tokenizer-init: decoded_token is null (vLLM: None)
  LogprobFormatter bare(*no_tokenizer, false);
  BOOST_CHECK(bare.prompt_logprobs(prompt, e)[1]["98"]["decoded_token"].is_null());
}
