#include <boost/test/unit_test.hpp>

#include "actors/kv_cache/kv_cache_manager.hpp"

#include <algorithm>

using namespace troupe;

namespace {
std::vector<std::uint64_t> chain(std::initializer_list<std::uint64_t> h) { return h; }
}  // namespace

BOOST_AUTO_TEST_CASE(tables_grow_by_token_count) {
  KvCacheManager m(10, 16, false);
  auto r = m.allocate(1, 17, {}, 17);  // 17 tokens -> 2 blocks
  BOOST_CHECK(r.ok);
  BOOST_CHECK_EQUAL(r.new_blocks.size(), 2u);
  BOOST_CHECK_EQUAL(r.num_tokens, 17u);
  r = m.allocate(1, 32, {}, 0);  // still 2 blocks
  BOOST_CHECK(r.ok);
  BOOST_CHECK(r.new_blocks.empty());
  r = m.allocate(1, 33, {}, 0);
  BOOST_CHECK_EQUAL(r.new_blocks.size(), 1u);
  BOOST_CHECK_EQUAL(m.table(1)->size(), 3u);
  BOOST_CHECK(!m.allocate(1, 16 * 11, {}, 0).ok);  // a held request: all or nothing
  BOOST_CHECK_EQUAL(m.table(1)->size(), 3u);
  // A new request short of blocks gets a chunk of what it asked (chunked prefill), or nothing at all.
  r = m.allocate(2, 16 * 8, {}, 16 * 8);
  BOOST_CHECK(r.ok);
  BOOST_CHECK_EQUAL(r.num_tokens, 16u * 7);
  BOOST_CHECK(!m.allocate(3, 1, {}, 1).ok);
  BOOST_CHECK(m.table(3) == nullptr);  // a failed first allocation leaves no table
  m.free(1);
  m.free(1);  // unknown now: ignored
  m.free(2);
  BOOST_CHECK_EQUAL(m.num_free(), 10u);
  BOOST_CHECK_EQUAL(m.num_tables(), 0u);
  BOOST_CHECK_EQUAL(m.check(), "");
}

BOOST_AUTO_TEST_CASE(prefix_hits_share_blocks_from_the_next_exchange_on) {
  KvCacheManager m(10, 4, true);
  auto h = chain({11, 12, 13});
  auto a = m.allocate(1, 13, h, 13);  // 3 full blocks + 1 token
  BOOST_REQUIRE(a.ok);
  BOOST_CHECK_EQUAL(a.num_cached_tokens, 0u);
  // Same exchange: the blocks are being written, nothing to hit yet.
  auto b = m.allocate(2, 13, h, 13);
  BOOST_CHECK_EQUAL(b.num_cached_tokens, 0u);
  m.free(2);
  m.commit_pending();
  auto c = m.allocate(3, 13, h, 13);
  BOOST_REQUIRE(c.ok);
  BOOST_CHECK_EQUAL(c.num_cached_tokens, 12u);
  BOOST_CHECK_EQUAL(c.num_tokens, 13u);
  BOOST_CHECK((std::vector<std::uint32_t>(c.new_blocks.begin(), c.new_blocks.begin() + 3) ==
               std::vector<std::uint32_t>(a.new_blocks.begin(), a.new_blocks.begin() + 3)));
  BOOST_CHECK_EQUAL(c.new_blocks.size(), 4u);
  BOOST_CHECK_EQUAL(m.check(), "");
  // The last known token is always computed: 12 known tokens hit 2 blocks, not 3.
  auto d = m.allocate(4, 12, h, 12);
  BOOST_CHECK_EQUAL(d.num_cached_tokens, 8u);
  BOOST_CHECK_EQUAL(d.num_tokens, 12u);
  // A diverging chain hits up to the divergence.
  auto e = m.allocate(5, 13, chain({11, 99, 13}), 13);
  BOOST_CHECK_EQUAL(e.num_cached_tokens, 4u);
  BOOST_CHECK_EQUAL(m.stats().hits, 24u);
  BOOST_CHECK_EQUAL(m.check(), "");
  for (std::uint64_t id : {1, 3, 4, 5}) m.free(id);
  BOOST_CHECK_EQUAL(m.num_free(), 10u);
  BOOST_CHECK_EQUAL(m.num_cached(), 3u);  // content survives its holders
  BOOST_CHECK_EQUAL(m.check(), "");
}

BOOST_AUTO_TEST_CASE(evictable_hits_cost_free_blocks_and_shrink_the_chunk) {
  KvCacheManager m(4, 4, true);
  auto h = chain({1, 2, 3});
  BOOST_REQUIRE(m.allocate(1, 16, h, 16).ok);  // all 4 blocks, 3 of them cached next exchange
  m.commit_pending();
  m.free(1);
  BOOST_CHECK_EQUAL(m.num_free(), 4u);
  BOOST_REQUIRE(m.allocate(2, 4, {}, 4).ok);  // takes the one uncached free block
  // Request 3 hits 3 evictable blocks (12 tokens) and wants 8 more: no block left, so it waits.
  BOOST_CHECK(!m.allocate(3, 8, chain({1, 2, 3, 4}), 20).ok);
  BOOST_CHECK_EQUAL(m.check(), "");
  m.free(2);
  auto g = m.allocate(3, 8, chain({1, 2, 3, 4}), 20);
  BOOST_REQUIRE(g.ok);
  BOOST_CHECK_EQUAL(g.num_cached_tokens, 12u);
  BOOST_CHECK_EQUAL(g.num_tokens, 16u);  // 4 free blocks: 3 hits + 1 fresh
  BOOST_CHECK_EQUAL(m.check(), "");
}

// A request that must compute every prompt position (prompt logprobs) asks with 0 known tokens: it takes
// no hits, yet the blocks it fills become hits for others.
BOOST_AUTO_TEST_CASE(zero_known_tokens_skip_the_lookup_but_still_fill_the_cache) {
  KvCacheManager m(10, 4, true);
  BOOST_CHECK(m.allocate(1, 9, chain({11, 12}), 9).ok);
  m.commit_pending();
  auto r = m.allocate(2, 9, chain({11, 12}), 0);  // request 1's two blocks are cached: not taken
  BOOST_CHECK(r.ok);
  BOOST_CHECK_EQUAL(r.num_cached_tokens, 0u);
  BOOST_CHECK_EQUAL(r.num_tokens, 9u);
  BOOST_CHECK_EQUAL(r.new_blocks.size(), 3u);
  BOOST_CHECK_EQUAL(m.check(), "");

  KvCacheManager fresh(10, 4, true);
  auto first = fresh.allocate(5, 9, chain({21, 22}), 0);
  fresh.commit_pending();
  auto hit = fresh.allocate(6, 9, chain({21, 22}), 9);
  BOOST_CHECK_EQUAL(hit.num_cached_tokens, 8u);
  BOOST_CHECK(std::equal(first.new_blocks.begin(), first.new_blocks.begin() + 2, hit.new_blocks.begin()));
  BOOST_CHECK_EQUAL(fresh.check(), "");
}

BOOST_AUTO_TEST_CASE(a_reset_forgets_every_cached_block) {
  // A re-formed worker group computed none of the cached KV: after the reset the same prefix misses,
  // blocks filled before the reset never register, and the pool stays consistent.
  KvCacheManager m(10, 4, true);
  auto h = chain({11, 12, 13});
  BOOST_REQUIRE(m.allocate(1, 13, h, 13).ok);
  m.commit_pending();
  BOOST_REQUIRE_EQUAL(m.allocate(2, 13, h, 13).num_cached_tokens, 12u);  // holds the cached blocks
  m.free(1);
  BOOST_CHECK_EQUAL(m.num_cached(), 3u);
  m.reset_prefix_cache();
  BOOST_CHECK_EQUAL(m.num_cached(), 0u);
  m.commit_pending();
  BOOST_CHECK_EQUAL(m.num_cached(), 0u);
  auto c = m.allocate(3, 13, h, 13);
  BOOST_REQUIRE(c.ok);
  BOOST_CHECK_EQUAL(c.num_cached_tokens, 0u);
  BOOST_CHECK_EQUAL(m.check(), "");
  m.commit_pending();  // the next exchange: request 3's blocks (computed by the new workers) register
  m.free(2);
  m.free(3);
  BOOST_CHECK_EQUAL(m.num_cached(), 3u);
  BOOST_CHECK_EQUAL(m.num_free(), 10u);
  BOOST_CHECK_EQUAL(m.check(), "");
}
