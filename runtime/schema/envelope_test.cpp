#define BOOST_TEST_MODULE envelope
#include <boost/test/unit_test.hpp>

#include "runtime/actor_system.hpp"
#include "runtime/interfaces.hpp"

#include <caf/actor_system.hpp>
#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>

using namespace troupe;

static SubmitMsg sample_submit() {
  return SubmitMsg::make([](schema::SubmitRequest::Builder b) {
    b.setRequestId(42);
    auto toks = b.initPromptTokens(3);
    toks.set(0, 7);
    toks.set(1, 8);
    toks.set(2, 9);
    b.initSampling().setMaxTokens(5);
  });
}

BOOST_AUTO_TEST_CASE(local_copies_share_the_frozen_bytes) {
  auto a = sample_submit();
  auto b = a;  // what a local send does
  BOOST_CHECK(a.data() == b.data());
  BOOST_CHECK_EQUAL(a.size_bytes(), b.size_bytes());
  BOOST_CHECK_EQUAL(b.view()->getRequestId(), 42u);
  BOOST_CHECK_EQUAL(b.view()->getSampling().getMaxTokens(), 5u);
}

BOOST_AUTO_TEST_CASE(remote_send_round_trips_through_caf_serialization) {
  TroupeActorConfig cfg(1);
  caf::actor_system sys{cfg};
  auto in = sample_submit();
  std::vector<char> buf;
  caf::binary_serializer sink{sys, buf};
  BOOST_REQUIRE(!sink(in));
  SubmitMsg out;
  caf::binary_deserializer source{sys, buf};
  BOOST_REQUIRE(!source(out));
  auto v = out.view();
  BOOST_CHECK_EQUAL(v->getRequestId(), 42u);
  BOOST_REQUIRE_EQUAL(v->getPromptTokens().size(), 3u);
  BOOST_CHECK_EQUAL(v->getPromptTokens()[2], 9);
}

BOOST_AUTO_TEST_CASE(garbage_bytes_are_rejected_not_crashed_on) {
  std::vector<char> junk(24, '\xff');
  BOOST_CHECK_THROW(SubmitMsg::from_bytes(junk), std::exception);
  std::vector<char> odd(13, 0);
  BOOST_CHECK_THROW(SubmitMsg::from_bytes(odd), std::runtime_error);
}
