#define BOOST_TEST_MODULE kv_cache
#include <boost/test/unit_test.hpp>

#include "actors/kv_cache/block_pool.hpp"

using namespace troupe;

BOOST_AUTO_TEST_CASE(allocates_all_or_nothing_and_releases) {
  BlockPool pool(4);
  std::vector<std::uint32_t> a;
  BOOST_REQUIRE(pool.allocate(3, a));
  BOOST_CHECK((a == std::vector<std::uint32_t>{0, 1, 2}));  // a fresh pool fills front to back
  BOOST_CHECK_EQUAL(pool.num_free(), 1u);
  std::vector<std::uint32_t> b;
  BOOST_CHECK(!pool.allocate(2, b));
  BOOST_CHECK(b.empty());
  BOOST_CHECK_EQUAL(pool.num_free(), 1u);
  for (auto id : a) pool.release(id);
  BOOST_CHECK_EQUAL(pool.num_free(), 4u);
  BOOST_CHECK_THROW(pool.release(a[0]), std::logic_error);
  BOOST_CHECK_EQUAL(pool.check(), "");
}

BOOST_AUTO_TEST_CASE(cached_free_blocks_are_evicted_last_and_least_recently_freed_first) {
  BlockPool pool(4);
  std::vector<std::uint32_t> a;
  BOOST_REQUIRE(pool.allocate(4, a));
  pool.cache(0, 100);
  pool.cache(1, 101);
  pool.cache(1, 999);  // a block keeps its first hash
  pool.cache(2, 100);  // same content as block 0: stays uncached
  BOOST_CHECK_EQUAL(pool.num_cached(), 2u);
  pool.release(1);  // cached, freed first: least recently used
  pool.release(0);
  pool.release(2);  // uncached: reused before any cached block
  BOOST_CHECK_EQUAL(*pool.lookup(100), 0u);
  std::vector<std::uint32_t> b;
  BOOST_REQUIRE(pool.allocate(2, b));
  BOOST_CHECK((b == std::vector<std::uint32_t>{2, 1}));
  BOOST_CHECK(!pool.lookup(101));  // evicted with its block
  BOOST_CHECK(pool.lookup(100));
  // A hit takes a free cached block back; a second holder shares it.
  pool.touch(0);
  pool.touch(0);
  BOOST_CHECK_EQUAL(pool.ref(0), 2u);
  BOOST_CHECK_EQUAL(pool.num_free(), 0u);
  BOOST_CHECK_EQUAL(pool.check(), "");
  pool.release(0);
  pool.release(0);
  BOOST_CHECK_EQUAL(pool.num_free(), 1u);
  BOOST_CHECK_EQUAL(pool.check(), "");
}
