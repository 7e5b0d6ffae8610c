// The decode step's L2 lookahead window: what each point asks for, given the items' sizes and the window.
#define BOOST_TEST_MODULE l2_lookahead
#include "model/cuda/l2_lookahead.hpp"

#include <boost/test/unit_test.hpp>

#include <stdexcept>

using namespace troupe::cuda;
using Range = L2Lookahead::Range;
constexpr std::size_t K = 4096, M = 1 << 20;

namespace {
// Items at distinct, far-apart fake addresses (never dereferenced).
const void* at(std::uintptr_t base) { return reinterpret_cast<const void*>(base); }
}  // namespace

BOOST_AUTO_TEST_CASE(window_zero_asks_for_nothing) {
  L2Lookahead a;
  a.add(at(0x10000000), 10 * M);
  BOOST_TEST(a.ahead(0).empty());
}

BOOST_AUTO_TEST_CASE(window_slides_over_items_and_never_asks_twice) {
  L2Lookahead a(6 * M);
  const int qkv = a.add(at(0x10000000), 4 * M), qb = a.add(at(0x20000000), 5 * M);
  const int o = a.add(at(0x30000000), 20 * M);
  // Before the first kernel: all of item 0 and 2 MB of item 1.
  std::vector<Range> r = a.ahead(qkv);
  BOOST_TEST(r.size() == 2u);
  BOOST_TEST((r[0] == Range{0x10000000, 4 * M}));
  BOOST_TEST((r[1] == Range{0x20000000, 2 * M}));
  // Before q_b: the window is [start(q_b), +6 MB): the rest of q_b and 1 MB of o_proj.
  r = a.ahead(qb);
  BOOST_TEST(r.size() == 2u);
  BOOST_TEST((r[0] == Range{0x20000000 + 2 * M, 3 * M}));
  BOOST_TEST((r[1] == Range{0x30000000, 1 * M}));
  // Asking again at the same point: nothing new.
  BOOST_TEST(a.ahead(qb).empty());
  // Before o_proj: 6 MB of it, 1 already asked for.
  r = a.ahead(o);
  BOOST_TEST(r.size() == 1u);
  BOOST_TEST((r[0] == Range{0x30000000 + 1 * M, 5 * M}));
  // Past the last item: nothing beyond the stream.
  BOOST_TEST(a.ahead(a.size()).empty());
  BOOST_CHECK_THROW(a.ahead(a.size() + 1), std::out_of_range);
  BOOST_CHECK_THROW(a.ahead(-1), std::out_of_range);
}

BOOST_AUTO_TEST_CASE(skipping_points_drops_what_was_read_meanwhile) {
  L2Lookahead a(3 * M);
  a.add(at(0x10000000), 2 * M);
  a.add(at(0x20000000), 2 * M);
  const int c = a.add(at(0x30000000), 8 * M);
  BOOST_TEST(a.ahead(0).size() == 2u);  // items 0 and half of 1
  // Straight to item 2: the rest of item 1 was read by its kernel without a prefetch; start at item 2.
  const std::vector<Range> r = a.ahead(c);
  BOOST_TEST(r.size() == 1u);
  BOOST_TEST((r[0] == Range{0x30000000, 3 * M}));
}

BOOST_AUTO_TEST_CASE(cuts_inside_an_item_are_page_aligned_and_reset_starts_over) {
  L2Lookahead a(M + 100);  // a window that is not a multiple of the alignment
  a.add(at(0x10000000), 4 * M);
  std::vector<Range> r = a.ahead(0);
  BOOST_TEST(r.size() == 1u);
  BOOST_TEST(r[0].bytes == M + K);  // rounded up to the next 4 KB inside the item
  BOOST_TEST(r[0].bytes % K == 0u);
  a.reset();
  r = a.ahead(0);
  BOOST_TEST(r.size() == 1u);
  BOOST_TEST((r[0] == Range{0x10000000, M + K}));
}

BOOST_AUTO_TEST_CASE(the_last_item_ends_the_stream_unrounded) {
  L2Lookahead a(8 * M);
  a.add(at(0x10000000), 3 * M + 48);  // an item not a multiple of 4 KB: its end is the end, not rounded past
  const std::vector<Range> r = a.ahead(0);
  BOOST_TEST(r.size() == 1u);
  BOOST_TEST((r[0] == Range{0x10000000, 3 * M + 48}));
}
