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
