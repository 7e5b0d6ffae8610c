// The host-side plans of the MLA and MoE kernels (pure C++, runs in CI): every KV position lands in exactly one
// split, the workspace covers every batch size up to the maximum, and the MoE tile grid covers any routing.
#define BOOST_TEST_MODULE kernel_plans
#include <boost/test/unit_test.hpp>

#include "kernels/mla/mla_plan.hpp"
#include "kernels/moe/moe_plan.hpp"

#include <random>
#include <vector>

using namespace troupe::kernels;

BOOST_AUTO_TEST_CASE(mla_splits_cover_every_position_once) {
  for (int sms : {1, 78, 132})
    for (int heads : {4, 16, 128})
      for (int tokens : {1, 2, 16, 64, 300})
        for (int len : {1, 63, 64, 65, 4096, 5000, 32768}) {
          const auto p = mla_detail::plan_fast(tokens, heads, len, sms);
          BOOST_TEST(p.splits >= 1);
          BOOST_TEST(p.splits <= mla_detail::kMaxSplits);
          BOOST_TEST(p.split_len % mla_detail::kKvTile == 0);
          BOOST_TEST(long(p.splits) * p.split_len >= len);             // the last position has a split
          BOOST_TEST(long(p.splits - 1) * p.split_len < std::max(len, 1));  // and no split starts past the end
          BOOST_TEST(p.heads_per_block * p.tokens_per_tile <= mla_detail::kRowsPerCta);
          BOOST_TEST(long(p.head_blocks) * p.heads_per_block >= heads);
          BOOST_TEST(long(p.token_tiles) * p.tokens_per_tile >= tokens);
        }
}

BOOST_AUTO_TEST_CASE(mla_splits_fill_the_gpu_for_one_long_sequence) {
  const auto p = mla_detail::plan_fast(1, 16, 32768, 132);
  BOOST_TEST(p.splits >= 64);  // one CTA per split: a lone sequence needs many to keep the SMs busy
  const auto wide = mla_detail::plan_fast(4096, 16, 4096, 132);
  BOOST_TEST(wide.splits == 1);  // a batch that fills the GPU many times over is not split
}

BOOST_AUTO_TEST_CASE(mla_absorb_only_at_decode_sizes_and_fast_widths) {
  BOOST_TEST(mla_detail::absorb_shape_ok(1, 512, 64, 128, 128));   // R1 / V3 / V2-Lite, one token
  BOOST_TEST(mla_detail::absorb_shape_ok(4, 512, 64, 128, 128));
  BOOST_TEST(!mla_detail::absorb_shape_ok(5, 512, 64, 128, 128));  // the batched GEMMs from 5 tokens
  BOOST_TEST(!mla_detail::absorb_shape_ok(0, 512, 64, 128, 128));
  BOOST_TEST(!mla_detail::absorb_shape_ok(1, 256, 64, 128, 128));  // the tiny checkpoints' widths
  BOOST_TEST(!mla_detail::absorb_shape_ok(1, 512, 32, 128, 128));
  BOOST_TEST(!mla_detail::absorb_shape_ok(1, 512, 64, 512, 128));  // q_nope past the kernel's 256
}

BOOST_AUTO_TEST_CASE(moe_tile_grid_covers_any_routing) {
  std::mt19937 rng(7);
  for (int E : {8, 12, 64, 256})
    for (int entries : {1, 3, 24, 600, 5000})
      for (int bm : {moe_detail::kBmDecode, moe_detail::kBmPrefill})
        for (int trial = 0; trial < 20; ++trial) {
          std::vector<int> count(E, 0);
          const int used = 1 + int(rng() % E);  // skewed: only the first `used` experts get entries
          for (int i = 0; i < entries; ++i) ++count[trial == 0 ? 0 : rng() % used];
          int tiles = 0;
          for (int c : count) tiles += (c + bm - 1) / bm;
          BOOST_TEST(tiles <= moe_detail::max_tiles(entries, E, bm));
        }
}

BOOST_AUTO_TEST_CASE(moe_workspace_for_max_tokens_holds_any_smaller_batch) {
  for (int inter : {64, 256, 1408, 2048})
    for (int max_tokens : {1, 7, 256, 8192}) {
      const auto big = moe_detail::moe_layout(max_tokens, 8, 256, inter);
      for (int n : {1, max_tokens / 2 + 1, max_tokens}) {
        const auto l = moe_detail::moe_layout(n, 8, 256, inter);
        BOOST_TEST(l.total <= big.total);
        BOOST_TEST(l.gate_up + std::size_t(std::min(n * 8, moe_detail::kSplitKMaxEntries)) * 2 * inter * 4 <= big.total);
        BOOST_TEST(l.perm % 16 == 0);
        BOOST_TEST(l.tiles % 16 == 0);
        BOOST_TEST(l.h % 16 == 0);
      }
    }
}

BOOST_AUTO_TEST_CASE(moe_split_k_only_for_few_experts) {
  BOOST_TEST(moe_detail::choose_ksplit(8, 256, 7168, 256, 132) > 1);    // one R1 token: 8 experts
  BOOST_TEST(moe_detail::choose_ksplit(512, 256, 7168, 256, 132) == 1);  // 64 tokens spread over all experts
  BOOST_TEST(moe_detail::choose_ksplit(8, 12, 256, 64, 132) == 1);      // 2 k tiles: nothing to split
  BOOST_TEST(moe_detail::choose_ksplit(4096, 256, 7168, 256, 132) == 1);  // past the gate/up buffer's bound
}
