// The host-side plans of the MLA prefill and of the MoE cuBLASLt path (pure C++, run in CI): over random steps,
// every query row sees each key of its context exactly once across its chunk's segments, segments pack their
// pieces without gaps or overlap, the work list holds exactly the query tiles that see a key (heaviest first),
// and the MoE workspace's regions are disjoint, aligned and large enough.
#include <boost/test/unit_test.hpp>

#include "kernels/mla/mla_prefill_plan.hpp"
#include "kernels/moe/moe_lt_plan.hpp"

#include <map>
#include <random>
#include <set>
#include <vector>

using namespace troupe::kernels;

namespace {

std::vector<MlaPrefillChunk> random_chunks(std::mt19937& rng) {
  std::uniform_int_distribution<int> count(1, 5), n_q(1, 700), past(0, 2);
  std::vector<MlaPrefillChunk> chunks;
  int t = 0;
  const int n = count(rng);
  for (int i = 0; i < n; ++i) {
    const int q = n_q(rng);
    const int pos0 = past(rng) == 0 ? 0 : std::uniform_int_distribution<int>(1, 3000)(rng);  // chunked prefill
    chunks.push_back({t, q, pos0, i});
    t += q;
  }
  return chunks;
}

// Keys of segment s that query row i of its chunk sees (causal).
int visible(const MlaPrefillSeg& s, int i) { return std::max(0, std::min(s.k_hi, s.pos0 + i + 1) - s.k_lo); }

void check_pieces(const MlaPrefillPlan& p, int piece_rows) {
  for (const MlaPrefillPiece& pc : p.pieces) {
    BOOST_TEST(pc.rows >= 1);
    BOOST_TEST(pc.rows <= piece_rows);
    int row = 0;
    for (int si = pc.seg0; si < pc.seg0 + pc.num_segs; ++si) {
      const MlaPrefillSeg& s = p.segs[std::size_t(si)];
      BOOST_TEST(s.buf0 == row);  // buffer rows packed in order, no gap, no overlap
      BOOST_TEST(s.k_hi > s.k_lo);
      row += s.k_hi - s.k_lo;
    }
    BOOST_TEST(row == pc.rows);
  }
}

void check_work_list(const MlaPrefillPlan& p, int tile_q) {
  for (const MlaPrefillPiece& pc : p.pieces) {
    std::set<std::int32_t> want;
    for (int si = pc.seg0; si < pc.seg0 + pc.num_segs; ++si) {
      const MlaPrefillSeg& s = p.segs[std::size_t(si)];
      for (int t = 0; t * tile_q < s.n_q; ++t)
        if (visible(s, std::min(s.n_q, (t + 1) * tile_q) - 1) > 0) want.insert((si << 16) | t);
    }
    std::set<std::int32_t> got;
    int last_keys = 1 << 30;
    for (int k = pc.tile0; k < pc.tile0 + pc.num_tiles; ++k) {
      const std::int32_t item = p.tiles[std::size_t(k)];
      got.insert(item);
      const MlaPrefillSeg& s = p.segs[std::size_t(item >> 16)];
      const int keys = visible(s, std::min(s.n_q, ((item & 0xffff) + 1) * tile_q) - 1);
      BOOST_TEST(keys <= last_keys);  // heaviest first
      last_keys = keys;
    }
    BOOST_TEST(got.size() == std::size_t(pc.num_tiles));  // no item twice
    BOOST_TEST((got == want));
  }
}

// Per chunk: segments in key order, first / last flags only at the ends, and every query row's visible keys add
// up to its whole causal context (pos + 1), counting only segments whose query tile is in the work list.
void check_coverage(const std::vector<MlaPrefillChunk>& chunks, const MlaPrefillPlan& p, int tile_q) {
  std::set<std::int32_t> items(p.tiles.begin(), p.tiles.end());
  std::map<int, std::vector<int>> by_seq;
  for (int si = 0; si < int(p.segs.size()); ++si) by_seq[p.segs[std::size_t(si)].seq].push_back(si);
  for (const MlaPrefillChunk& c : chunks) {
    const std::vector<int>& segs = by_seq[c.seq];
    BOOST_REQUIRE(!segs.empty());
    int k = 0;
    for (std::size_t j = 0; j < segs.size(); ++j) {
      const MlaPrefillSeg& s = p.segs[std::size_t(segs[j])];
      BOOST_TEST(s.k_lo == k);
      BOOST_TEST(s.t0 == c.t0);
      BOOST_TEST(((s.flags & kMlaSegFirst) != 0) == (j == 0));
      BOOST_TEST(((s.flags & kMlaSegLast) != 0) == (j + 1 == segs.size()));
      k = s.k_hi;
    }
    BOOST_TEST(k == c.pos0 + c.n_q);
    for (int i = 0; i < c.n_q; i += 7) {
      long seen = 0;
      for (int si : segs)
        if (items.count((si << 16) | (i / tile_q))) seen += visible(p.segs[std::size_t(si)], i);
      BOOST_TEST(seen == c.pos0 + i + 1);
    }
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(mla_prefill_plan_covers_every_key_once) {
  std::mt19937 rng(11);
  for (int trial = 0; trial < 300; ++trial) {
    const std::vector<MlaPrefillChunk> chunks = random_chunks(rng);
    const int piece_rows = std::uniform_int_distribution<int>(1, 5000)(rng);
    const int tile_q = trial % 2 ? 64 : 128;
    const MlaPrefillPlan p = plan_mla_prefill(chunks, piece_rows, tile_q);
    check_pieces(p, piece_rows);
    check_work_list(p, tile_q);
    check_coverage(chunks, p, tile_q);
  }
}

BOOST_AUTO_TEST_CASE(mla_prefill_plan_refuses_bad_arguments) {
  BOOST_CHECK_THROW(plan_mla_prefill({{0, 10, 0, 0}}, 0), std::invalid_argument);
  BOOST_CHECK_THROW(plan_mla_prefill({{0, 10, 0, 0}}, 100, 96), std::invalid_argument);
  BOOST_TEST(plan_mla_prefill({}, 100).pieces.empty());
  BOOST_TEST(plan_mla_prefill({{0, 0, 5, 0}}, 100).segs.empty());  // a chunk without queries has no work
}

BOOST_AUTO_TEST_CASE(moe_lt_layout_regions_are_disjoint_and_large_enough) {
  using namespace moe_detail;
  struct Case { int tokens, top_k, E, H, I; bool fp8; };
  for (const Case c : {Case{4096, 8, 256, 7168, 2048, true}, Case{4096, 6, 64, 2048, 1408, false},
                       Case{9000, 8, 256, 7168, 2048, true}, Case{1, 2, 4, 128, 128, false},
                       Case{300, 3, 12, 256, 64, false}}) {
    const LtLayout l = lt_layout(c.tokens, c.top_k, c.E, c.H, c.I, c.fp8);
    const std::size_t entries = std::size_t(std::min(c.tokens, kLtChunkTokens)) * c.top_k;
    const std::size_t R = l.max_rows;
    BOOST_TEST(R >= entries + std::min<std::size_t>(c.E, entries) * kLtPad);  // every expert padded once
    const std::vector<std::size_t> starts = {l.perm, l.inv, l.offsets, l.s13, l.s2, l.a, l.a_scale, l.b, l.total};
    for (std::size_t i = 0; i + 1 < starts.size(); ++i) {
      BOOST_TEST(starts[i] % 256 == 0);
      BOOST_TEST(starts[i] <= starts[i + 1]);
    }
    BOOST_TEST(l.inv - l.perm >= R * 4);
    BOOST_TEST(l.offsets - l.inv >= entries * 4);
    BOOST_TEST(l.s13 - l.offsets >= std::size_t(c.E + 1) * 4);
    BOOST_TEST(l.a_scale - l.a >= R * std::max(c.H, c.I) * (c.fp8 ? 1u : 2u));
    BOOST_TEST(l.total - l.b >= R * std::max(2 * c.I, c.H) * 2);  // gate|up, then y, in bf16
  }
}
