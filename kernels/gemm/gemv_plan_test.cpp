// The decode GEMV's host-side plan (pure C++, runs in CI): the blocks cover every row, k-splits never leave a
// warp without work, short rows get more rows per warp, narrow outputs more splits.
#include <boost/test/unit_test.hpp>

#include "kernels/gemm/gemv_plan.hpp"

using namespace troupe::kernels;

BOOST_AUTO_TEST_CASE(gemv_plan_covers_every_row) {
  for (int e : {1, 2})
    for (int m : {1, 2, 3, 4})
      for (int n : {1, 37, 576, 2112, 7168, 24576, 36864})
        for (int k : {128, 512, 1536, 2048, 7168, 10880, 16384, 18432}) {
          const auto p = gemv::plan(m, n, k, e, 132);
          BOOST_TEST_REQUIRE(p.ok == (k * e < gemv::kMaxRowBytes));
          if (!p.ok) continue;
          BOOST_TEST((p.rows == 1 || p.rows == 2 || p.rows == 4));
          BOOST_TEST((p.splits == 1 || p.splits == 2 || p.splits == 4 || p.splits == 8));
          const long rows_covered = long(p.blocks) * (gemv::kWarps / p.splits) * p.rows;
          BOOST_TEST(rows_covered >= n);                                                // every row has a warp
          BOOST_TEST(rows_covered - long(gemv::kWarps / p.splits) * p.rows < n);         // and no block is idle
          const int chunks = k * e / 16;
          BOOST_TEST((p.splits == 1 || chunks / p.splits >= 64));  // a split is at least 2 chunks per lane
        }
}

BOOST_AUTO_TEST_CASE(gemv_plan_shapes_of_r1_and_v2_lite) {
  const auto q_b = gemv::plan(1, 24576, 1536, 1, 132);  // 3 chunks per lane: 4 rows per warp, 12 loads in flight
  BOOST_TEST(q_b.rows == 4);
  BOOST_TEST(q_b.splits == 1);
  const auto gate_up = gemv::plan(1, 36864, 7168, 1, 132);  // 14 chunks per lane, 36864 warps: nothing to add
  BOOST_TEST(gate_up.rows == 1);
  BOOST_TEST(gate_up.splits == 1);
  BOOST_TEST(!gemv::plan(1, 7168, 16384, 1, 132).ok);  // o_proj's 16 KiB rows: the small-m kernel is faster
  const auto kv_a = gemv::plan(1, 576, 2048, 2, 132);  // 576 rows on 132 SMs: split k
  BOOST_TEST(kv_a.splits == 4);
  const auto router = gemv::plan(1, 256, 7168, 2, 132);  // R1's router, bf16: 256 rows, 896 chunks
  BOOST_TEST(router.splits == 8);
  BOOST_TEST(!gemv::plan(5, 576, 2048, 2, 132).ok);     // m beyond kMaxM
  BOOST_TEST(!gemv::plan(1, 576, 2000, 1, 132).ok);     // FP8 k not a multiple of the 128-wide scale block
  BOOST_TEST(!gemv::plan(1, 576, 2004, 2, 132).ok);     // rows not 16-byte aligned
}
