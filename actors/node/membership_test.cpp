#define BOOST_TEST_MODULE membership
#include <boost/test/unit_test.hpp>

#include "actors/node/membership.hpp"

using namespace troupe;
using namespace std::chrono_literals;
using Clock = Membership::Clock;

BOOST_AUTO_TEST_CASE(nodes_take_the_lowest_free_slot) {
  Membership m(3, "sim", 2, 1000ms);
  auto t = Clock::now();
  BOOST_TEST(m.missing_slots() == (std::vector<std::uint32_t>{1, 2}));
  auto a = m.admit(true, "a", "sim", 0, t);
  BOOST_TEST(a.accepted);
  BOOST_TEST(a.slot == 1u);
  auto b = m.admit(true, "b", "sim", 2, t);
  BOOST_TEST(b.slot == 2u);
  BOOST_TEST(m.missing_slots().empty());
  auto c = m.admit(true, "c", "sim", 0, t);  // full: a spare may retry later
  BOOST_TEST(!c.accepted);
  BOOST_TEST(c.retry);
  m.release(1);
  auto c2 = m.admit(true, "c", "sim", 0, t);
  BOOST_TEST(c2.accepted);
  BOOST_TEST(c2.slot == 1u);
  BOOST_TEST(m.name(1) == "c");
}

BOOST_AUTO_TEST_CASE(refusals_say_why_and_are_final) {
  Membership m(2, "sim", 4, 1000ms);
  auto t = Clock::now();
  auto bad = m.admit(false, "a", "sim", 0, t);
  BOOST_TEST(!bad.accepted);
  BOOST_TEST(!bad.retry);
  BOOST_TEST(bad.reason == "wrong join token");
  BOOST_TEST(m.admit(true, "a", "cuda", 0, t).reason.find("backend") != std::string::npos);
  BOOST_TEST(m.admit(true, "a", "sim", 2, t).reason.find("2 devices") != std::string::npos);
  BOOST_TEST(!m.admit(true, "", "sim", 0, t).accepted);
  BOOST_TEST(m.live_slots().empty());  // no refusal takes a slot
}

BOOST_AUTO_TEST_CASE(a_duplicate_name_is_refused_while_live) {
  Membership m(3, "sim", 1, 1000ms);
  auto t = Clock::now();
  BOOST_TEST(m.admit(true, "a", "sim", 0, t).accepted);
  auto dup = m.admit(true, "a", "sim", 0, t);
  BOOST_TEST(!dup.accepted);
  BOOST_TEST(!dup.retry);
  BOOST_TEST(dup.duplicate);
  BOOST_TEST(dup.reason.find("already joined (slot 1 (rank 1))") != std::string::npos);
  BOOST_TEST(m.live_slots() == (std::vector<std::uint32_t>{1}));  // the live one is untouched
  m.release(1);
  BOOST_TEST(m.admit(true, "a", "sim", 0, t).accepted);  // once its slot is free it may come back
}

BOOST_AUTO_TEST_CASE(silent_nodes_expire_once) {
  Membership m(3, "sim", 2, 1000ms);
  auto t = Clock::now();
  m.admit(true, "a", "sim", 0, t);
  m.admit(true, "b", "sim", 0, t);
  m.seen(2, t + 900ms);
  BOOST_TEST(m.expire(t + 1000ms).empty());  // exactly the timeout is not yet late
  BOOST_TEST(m.expire(t + 1500ms) == (std::vector<std::uint32_t>{1}));
  BOOST_TEST(m.expire(t + 1600ms).empty());  // reported once
  BOOST_TEST(m.expire(t + 2000ms) == (std::vector<std::uint32_t>{2}));
  BOOST_TEST(m.describe_slot(2) == "slot 2 (ranks 4-5)");
  BOOST_TEST(m.missing_slots() == (std::vector<std::uint32_t>{1, 2}));
}
