#define BOOST_TEST_MODULE block_pool
#include <boost/test/unit_test.hpp>

#include "actors/kv_cache/block_pool.hpp"

using namespace troupe;

BOOST_AUTO_TEST_CASE(allocates_all_or_nothing_and_releases) {
  BlockPool pool(4);
  auto a = pool.allocate(3);
  BOOST_REQUIRE(a);
  BOOST_CHECK_EQUAL(a->size(), 3u);
  BOOST_CHECK_EQUAL(pool.num_free(), 1u);
  BOOST_CHECK(!pool.allocate(2));
  BOOST_CHECK_EQUAL(pool.num_free(), 1u);
  pool.release(*a);
  BOOST_CHECK_EQUAL(pool.num_free(), 4u);
  BOOST_CHECK_THROW(pool.release(*a), std::logic_error);
}

BOOST_AUTO_TEST_CASE(book_grows_tables_by_token_count) {
  KvBook book(10, 16);
  auto r = book.allocate(1, 17);  // 17 tokens -> 2 blocks
  BOOST_CHECK(r.ok);
  BOOST_CHECK_EQUAL(r.new_blocks.size(), 2u);
  r = book.allocate(1, 32);  // still 2 blocks
  BOOST_CHECK(r.ok);
  BOOST_CHECK(r.new_blocks.empty());
  r = book.allocate(1, 33);
  BOOST_CHECK_EQUAL(r.new_blocks.size(), 1u);
  BOOST_CHECK_EQUAL(book.table(1)->size(), 3u);
  BOOST_CHECK_EQUAL(book.num_owned(), 3u);
  BOOST_CHECK(!book.allocate(2, 16 * 8).ok);  // needs 8, 7 free
  BOOST_CHECK(book.table(2) == nullptr);       // a failed first allocation leaves no empty table
  book.free(1);
  book.free(1);  // unknown now: ignored
  BOOST_CHECK_EQUAL(book.num_free(), 10u);
  BOOST_CHECK_EQUAL(book.num_tables(), 0u);
}
