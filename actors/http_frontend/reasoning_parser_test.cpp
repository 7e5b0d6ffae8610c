#define BOOST_TEST_MODULE reasoning_parser
#include <boost/test/unit_test.hpp>

#include "actors/http_frontend/reasoning_parser.hpp"

using namespace troupe;

namespace {
// Feeds `text` in pieces of `step` bytes and returns everything routed.
ReasoningDelta run(bool primed, const std::string& text, std::size_t step) {
  ReasoningParser p(primed);
  ReasoningDelta all;
  for (std::size_t i = 0; i < text.size(); i += step) {
    auto d = p.feed(text.substr(i, step));
    all.reasoning += d.reasoning;
    all.content += d.content;
  }
  auto d = p.flush();
  all.reasoning += d.reasoning;
  all.content += d.content;
  return all;
}
}  // namespace

BOOST_AUTO_TEST_CASE(split_is_the_same_for_every_chunking) {
  for (std::size_t step : {1, 2, 3, 5, 7, 100}) {
    BOOST_TEST_CONTEXT("step " << step) {
      auto a = run(true, "Let me think.\n</think>\n\nThe answer is 4.", step);  // the template primed <think>
      BOOST_CHECK_EQUAL(a.reasoning, "Let me think.\n");
      BOOST_CHECK_EQUAL(a.content, "\n\nThe answer is 4.");
      auto b = run(false, "<think>hmm</think>Yes.", step);  // the model opened it itself
      BOOST_CHECK_EQUAL(b.reasoning, "hmm");
      BOOST_CHECK_EQUAL(b.content, "Yes.");
      auto c = run(false, "Just an answer with a </think> inside", step);  // no <think>: all content
      BOOST_CHECK_EQUAL(c.reasoning, "");
      BOOST_CHECK_EQUAL(c.content, "Just an answer with a </think> inside");
      auto d = run(true, "still thinking when cut off </thi", step);  // never closed: all reasoning
      BOOST_CHECK_EQUAL(d.reasoning, "still thinking when cut off </thi");
      BOOST_CHECK_EQUAL(d.content, "");
    }
  }
}

BOOST_AUTO_TEST_CASE(prompt_priming_is_detected) {
  BOOST_CHECK(ReasoningParser::prompt_opens_reasoning("<｜User｜>hi<｜Assistant｜><think>\n"));
  BOOST_CHECK(!ReasoningParser::prompt_opens_reasoning("<｜User｜>hi<｜Assistant｜>"));
  BOOST_CHECK(!ReasoningParser::prompt_opens_reasoning("<think>a</think>b<｜Assistant｜>"));
}
