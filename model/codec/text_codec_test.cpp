#define BOOST_TEST_MODULE text_codec
#include <boost/test/unit_test.hpp>

#include "model/codec/text_codec.hpp"

using namespace troupe;

BOOST_AUTO_TEST_CASE(byte_codec_round_trips) {
  ByteCodec c;
  std::string text = "héllo 🙂 wörld";
  auto ids = c.encode(text, true);
  BOOST_CHECK_EQUAL(ids.size(), text.size());
  BOOST_CHECK_EQUAL(c.decode(ids), text);
}

BOOST_AUTO_TEST_CASE(stream_never_splits_a_utf8_sequence) {
  ByteCodec c;
  std::string text = "a🙂bé€";
  auto ids = c.encode(text, false);
  auto s = c.stream();
  std::string joined;
  for (auto id : ids) {
    auto piece = s->push(id);
    BOOST_CHECK_EQUAL(utf8_complete_prefix(piece), piece.size());
    joined += piece;
  }
  joined += s->flush();
  BOOST_CHECK_EQUAL(joined, text);
}

BOOST_AUTO_TEST_CASE(complete_prefix_stops_before_a_partial_sequence) {
  std::string euro = "€";  // 3 bytes
  BOOST_CHECK_EQUAL(utf8_complete_prefix("ab" + euro.substr(0, 2)), 2u);
  BOOST_CHECK_EQUAL(utf8_complete_prefix("ab" + euro), 5u);
  BOOST_CHECK_EQUAL(utf8_complete_prefix("abc"), 3u);
}

// skip-tokenizer-init: ids only; any attempt at text is a programming error the frontend prevents.
BOOST_AUTO_TEST_CASE(token_id_codec_has_no_text) {
  auto c = troupe::make_token_id_codec(512, 1);
  BOOST_TEST(!c->has_tokenizer());
  BOOST_TEST(c->vocab_size() == 512);
  BOOST_TEST(c->eos_id() == 1);
  std::vector<std::int32_t> ids{5, 6};
  BOOST_TEST(c->decode(ids) == "");
  auto s = c->stream();
  BOOST_TEST(s->push(5) + s->flush() == "");
  BOOST_CHECK_THROW(c->encode("x", true), std::logic_error);
  BOOST_TEST(troupe::ByteCodec().has_tokenizer());
}

// The stream is primed with the prompt, as vLLM's detokenizer is: a SentencePiece output that starts with
// "▁" keeps its space after prompt text, so the streamed text equals the full decode's tail.
BOOST_AUTO_TEST_CASE(tokenizer_stream_continues_the_prompt) {
  auto c = load_tokenizer_codec(std::string(TROUPE_SOURCE_DIR) + "/tests/data/tokenizer/llama2-sp");
  auto prompt = c->encode("The quick brown fox", true);
  auto output = c->encode("jumps over the dog", false);  // starts with a "▁jumps"-style piece
  std::vector<std::int32_t> all = prompt;
  all.insert(all.end(), output.begin(), output.end());
  std::string want = c->decode(all).substr(c->decode(prompt).size());
  BOOST_REQUIRE(!want.empty() && want.front() == ' ');
  auto primed = c->stream(true, prompt);
  std::string got;
  for (auto id : output) got += primed->push(id);
  got += primed->flush();
  BOOST_TEST(got == want);
  auto bare = c->stream(true);  // no prompt: the decoder drops the leading space, as at a text's start
  std::string alone;
  for (auto id : output) alone += bare->push(id);
  alone += bare->flush();
  BOOST_TEST(alone == want.substr(1));
}
