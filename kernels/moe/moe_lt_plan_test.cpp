// The MoE prefill path's host-side plans (pure C++, runs in CI): the workspace layout holds every segment, the
// lanes of the FP8 per-expert GEMMs take each used expert exactly once, largest first, with balanced rows, and the
// path is chosen where it was measured to win.
#include <boost/test/unit_test.hpp>

#include "kernels/moe/moe_lt_plan.hpp"

#include <algorithm>
#include <random>

using namespace troupe::kernels::moe_detail;

BOOST_AUTO_TEST_CASE(lanes_take_each_used_expert_once) {
  std::mt19937 rng(7);
  for (int lanes : {1, 2, 3, 4, 8})
    for (int trial = 0; trial < 20; ++trial) {
      std::vector<int> rows(257);
      for (int& r : rows) r = rng() % 3 == 0 ? 0 : 16 * int(1 + rng() % 20);
      rows[256] = 4096;  // R1's shared expert, packed last: every token
      const auto plan = assign_lanes(rows, lanes);
      BOOST_TEST_REQUIRE(int(plan.size()) == lanes);
      std::vector<int> seen(rows.size(), 0);
      std::vector<long> load;
      for (const auto& lane : plan) {
        long sum = 0;
        for (std::size_t i = 0; i < lane.size(); ++i) {
          seen[lane[i]]++, sum += rows[lane[i]];
          if (i) BOOST_TEST(rows[lane[i - 1]] >= rows[lane[i]]);  // issue order: largest first
        }
        load.push_back(sum);
      }
      for (std::size_t e = 0; e < rows.size(); ++e) BOOST_TEST(seen[e] == (rows[e] > 0 ? 1 : 0));
      // Greedy largest-first: apart from a lane holding one expert alone (the shared one), no lane is more than one
      // expert's rows (at most 320 here) above the least loaded.
      const long least = *std::min_element(load.begin(), load.end());
      for (std::size_t l = 0; l < plan.size(); ++l)
        if (plan[l].size() > 1) BOOST_TEST(load[l] - least <= 320);
    }
}

BOOST_AUTO_TEST_CASE(lanes_of_a_small_batch) {
  const auto plan = assign_lanes({0, 48, 0, 16, 32}, 4);  // 3 used experts on 4 lanes: one each, one lane idle
  BOOST_TEST(plan[0] == std::vector<int>{1});
  BOOST_TEST(plan[1] == std::vector<int>{4});
  BOOST_TEST(plan[2] == std::vector<int>{3});
  BOOST_TEST(plan[3].empty());
  BOOST_TEST(assign_lanes({0, 0}, 2)[0].empty());
}

BOOST_AUTO_TEST_CASE(layout_holds_every_padded_segment) {
  for (bool fp8 : {true, false}) {
    const LtLayout l = lt_layout(4096, 9, 257, 7168, 2048, fp8);
    // Each used expert's rows padded up to kLtPad: at most entries + E * kLtPad rows.
    BOOST_TEST(l.max_rows >= std::size_t(4096 * 9 + 257 * kLtPad));
    BOOST_TEST(l.b >= l.a_scale);
    BOOST_TEST(l.total >= l.b + l.max_rows * 7168 * 2);
    BOOST_TEST(l.tiles >= l.b + l.max_rows * 7168 * 2);
    // FP8: room for every 64-row piece of every segment (each segment adds at most one partial piece)
    BOOST_TEST(l.max_tiles == (fp8 ? l.max_rows / kLtWgmmaTileRows + 257 : 0));
    BOOST_TEST(l.total >= l.tiles + l.max_tiles * kLtWgmmaTileBytes);
  }
}

// The measured crossovers (troupe_kernel_bench moe, H200): each case is a row of docs/BENCHMARKS.md.
BOOST_AUTO_TEST_CASE(lt_pays_at_the_measured_crossovers) {
  const auto r1 = [](long tokens, int top_k) {
    return lt_pays(tokens * top_k, std::min(256L, tokens * top_k), 7168, 2048, true);
  };
  BOOST_TEST(!r1(128, 8));  // 4 rows per expert: below the FP8 floor
  BOOST_TEST(r1(256, 8));   // 8 rows: 3.5 against 5.0 ms
  BOOST_TEST(r1(512, 8));   // 16 rows: 3.6 against 6.9 ms
  BOOST_TEST(r1(4096, 8));  // 128 rows: 5.6 against 17.0 ms
  // R1 TP8 (inter 256): 5.5 MB and 1.4 GFLOP per expert at 128 rows, where the grouped kernels win (2.6 ms against 2.9)
  BOOST_TEST(!lt_pays(4096L * 8, 256, 7168, 256, true));
  // FP8 experts of 0.05 GFLOP (the kernel test's small shapes): grouped
  BOOST_TEST(!lt_pays(1024L * 4, 16, 256, 128, true));
  // V2-Lite bf16: from 24 rows per used expert (256 tokens x 6 over 64 experts)
  BOOST_TEST(!lt_pays(128L * 6, 64, 2048, 1408, false));
  BOOST_TEST(lt_pays(256L * 6, 64, 2048, 1408, false));
  BOOST_TEST(!lt_pays(256L * 8, 256, 7168, 2048, true, 16));  // TROUPE_MOE_LT_MIN_ROWS=16 overrides the floor
  BOOST_TEST(!lt_pays(0, 0, 7168, 2048, true));
}

BOOST_AUTO_TEST_CASE(lt_wgmma_pays_up_to_32_rows_per_expert) {
  BOOST_TEST(lt_wgmma_pays(256L * 8, 256));    // R1, 256 tokens: 8 rows per expert
  BOOST_TEST(lt_wgmma_pays(1024L * 8, 256));   // 32 rows: 3.23 against 3.60 ms
  BOOST_TEST(!lt_wgmma_pays(2048L * 8, 256));  // 64 rows: 4.42 against 3.71 ms
  BOOST_TEST(!lt_wgmma_pays(4096L * 8, 256));
  BOOST_TEST(!lt_wgmma_pays(0, 0));
  BOOST_TEST(lt_wgmma_pays(4096L * 8, 256, 1));  // TROUPE_MOE_LT_WGMMA=1 / =0 override
  BOOST_TEST(!lt_wgmma_pays(256L * 8, 256, 0));
}
