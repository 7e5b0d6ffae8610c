#pragma once
// Host-side plan of the non-absorbed MLA prefill (mla_prefill.hpp): the contexts of the step's prefill chunks
// cut into segments packed into pieces of at most `piece_rows` expanded keys, and per piece the list of
// (segment, query tile) work items, heaviest first. Pure C++: kernel_plan_test runs it in CI.
//
//   chunk A: context 0..2999 (queries 2000..2999)   chunk B: context 0..799 (all queries)   piece_rows 2048
//   piece 0: | A keys [0, 2048)                              |
//   piece 1: | A keys [2048, 3000) | B keys [0, 800) | ...     A's queries merge piece 0 and piece 1 via lse
#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <vector>

namespace troupe::kernels {

// Query rows per CTA (16 per warp): 64 or 128; the plan's work items and the launch must use the same.
// 128 (8 warps sharing each staged key tile): 188 against 131 TFLOP/s for R1's 4096-token prompt on an H200.
constexpr int kMlaPrefillTileQ = 128;
inline bool mla_prefill_tile_ok(int tile_q) { return tile_q == 64 || tile_q == 128; }
enum MlaPrefillFlags : std::int32_t { kMlaSegFirst = 1, kMlaSegLast = 2 };

// One chunk's share of one piece. Queries: step tokens [t0, t0 + n_q) at positions pos0 + i of sequence `seq`
// (an index into the AttnBatch block tables); keys: positions [k_lo, k_hi) of that sequence, at buffer rows
// [buf0, buf0 + k_hi - k_lo).
struct MlaPrefillSeg {
  std::int32_t t0, n_q, pos0, seq, k_lo, k_hi, buf0, flags;
};

struct MlaPrefillChunk {
  int t0 = 0, n_q = 0, pos0 = 0, seq = 0;  // step tokens [t0, t0 + n_q) at positions [pos0, pos0 + n_q)
};

struct MlaPrefillPiece {
  int seg0 = 0, num_segs = 0, tile0 = 0, num_tiles = 0, rows = 0;
};

struct MlaPrefillPlan {
  std::vector<MlaPrefillSeg> segs;
  std::vector<std::int32_t> tiles;  // (segment << 16) | query tile, per piece contiguous
  std::vector<MlaPrefillPiece> pieces;
};

inline MlaPrefillPlan plan_mla_prefill(const std::vector<MlaPrefillChunk>& chunks, int piece_rows,
                                       int tile_q = kMlaPrefillTileQ) {
  if (piece_rows < 1) throw std::invalid_argument("plan_mla_prefill: piece_rows must be positive");
  if (!mla_prefill_tile_ok(tile_q)) throw std::invalid_argument("plan_mla_prefill: tile_q must be 64 or 128");
  MlaPrefillPlan p;
  MlaPrefillPiece cur;
  auto flush = [&] {
    if (cur.rows == 0) return;
    cur.num_segs = int(p.segs.size()) - cur.seg0;
    cur.tile0 = int(p.tiles.size());
    // Work items: every query tile that sees at least one key of its segment, heaviest (most keys) first so
    // the causal tail does not leave the GPU idle at the end of the launch.
    std::vector<std::pair<int, std::int32_t>> work;
    for (int si = cur.seg0; si < int(p.segs.size()); ++si) {
      const MlaPrefillSeg& s = p.segs[std::size_t(si)];
      for (int t = 0; t * tile_q < s.n_q; ++t) {
        const int last_pos = s.pos0 + std::min(s.n_q, (t + 1) * tile_q) - 1;
        const int keys = std::min(s.k_hi, last_pos + 1) - s.k_lo;
        if (keys > 0) work.push_back({keys, (si << 16) | t});
      }
    }
    std::stable_sort(work.begin(), work.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    for (const auto& w : work) p.tiles.push_back(w.second);
    cur.num_tiles = int(p.tiles.size()) - cur.tile0;
    p.pieces.push_back(cur);
    cur = MlaPrefillPiece{};
    cur.seg0 = int(p.segs.size());
  };
  for (const MlaPrefillChunk& c : chunks) {
    if (c.n_q <= 0) continue;
    if ((c.n_q + tile_q - 1) / tile_q > 0xffff) throw std::invalid_argument("plan_mla_prefill: chunk too long");
    const int ctx = c.pos0 + c.n_q;
    for (int k = 0; k < ctx;) {
      const int take = std::min(ctx - k, piece_rows - cur.rows);
      std::int32_t flags = (k == 0 ? kMlaSegFirst : 0) | (k + take == ctx ? kMlaSegLast : 0);
      p.segs.push_back({c.t0, c.n_q, c.pos0, c.seq, k, k + take, cur.rows, flags});
      if (p.segs.size() > 0x7fff) throw std::invalid_argument("plan_mla_prefill: too many segments");
      cur.rows += take;
      k += take;
      if (cur.rows == piece_rows) flush();
    }
  }
  flush();
  return p;
}

}  // namespace troupe::kernels
