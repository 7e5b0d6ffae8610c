#include "model/checkpoint/checkpoint_test_util.hpp"
#include "model/checkpoint/shard.hpp"

#include <boost/test/unit_test.hpp>

using namespace troupe;
using namespace troupe::testing;

BOOST_AUTO_TEST_CASE(shard_ranges) {
  auto r = shard_range(8, 0, 1);
  BOOST_TEST(r.begin == 0);
  BOOST_TEST(r.size == 8);
  r = shard_range(8, 3, 4);
  BOOST_TEST(r.begin == 6);
  BOOST_TEST(r.size == 2);
  BOOST_CHECK_THROW(shard_range(8, 0, 3), CheckpointError);
  BOOST_CHECK_THROW(shard_range(8, 1, 1), CheckpointError);
  BOOST_CHECK_THROW(shard_range(8, 0, 4, 4), CheckpointError);  // 4 ranks cannot split 2 heads of width 4
  BOOST_TEST(shard_range(16, 1, 2, 4).begin == 8);
  BOOST_TEST(shard_shape({6, 4}, 1, 2) == std::vector<std::int64_t>({6, 2}));
}

BOOST_AUTO_TEST_CASE(rows_and_columns) {
  TempDir dir;
  // 4x6 weight with value 10*row + col.
  std::vector<float> w;
  for (int r = 0; r < 4; ++r)
    for (int c = 0; c < 6; ++c) w.push_back(float(10 * r + c));
  write_safetensors(dir.path + "/model.safetensors", {f32_entry("w", {4, 6}, w)});
  auto ck = Checkpoint::open(dir.path);
  const auto& t = ck.tensor("w");
  BOOST_TEST(shard_f32(t, 0, 0, 1) == w);
  BOOST_TEST(shard_f32(t, 1, 0, 1) == w);
  BOOST_TEST(shard_f32(t, 0, 1, 2) == std::vector<float>({20, 21, 22, 23, 24, 25, 30, 31, 32, 33, 34, 35}));
  BOOST_TEST(shard_f32(t, 1, 2, 3) == std::vector<float>({4, 5, 14, 15, 24, 25, 34, 35}));
  BOOST_CHECK_THROW(shard_f32(t, 2, 0, 1), CheckpointError);
}

BOOST_AUTO_TEST_CASE(fp8_shard_keeps_block_scales) {
  // 2x256 FP8 weight, all 1.0; columns 0..127 scale 3, 128..255 scale 5. Rank 1 of 4 holds columns
  // 64..127 (scale 3), rank 2 holds 128..191 (scale 5).
  TempDir dir;
  std::vector<std::byte> q(2 * 256, std::byte{0x38});
  write_safetensors(dir.path + "/model.safetensors",
                    {{"w", "F8_E4M3", {2, 256}, q}, f32_entry("s", {1, 2}, {3.0f, 5.0f})});
  auto ck = Checkpoint::open(dir.path);
  auto r1 = shard_f32(ck.tensor("w"), 1, 1, 4, &ck.tensor("s"));
  auto r2 = shard_f32(ck.tensor("w"), 1, 2, 4, &ck.tensor("s"));
  BOOST_TEST(r1.size() == 128u);
  BOOST_TEST(r1[0] == 3.0f);
  BOOST_TEST(r1[127] == 3.0f);
  BOOST_TEST(r2[0] == 5.0f);
  BOOST_TEST(r2[64] == 5.0f);
}
