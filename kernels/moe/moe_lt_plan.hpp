#pragma once
// moe_experts_lt's workspace (host-side, pure). Rows of one expert are padded to a multiple of kLtPad so every
// segment is a shape cuBLASLt takes as is (FP8: m % 4 == 0, m >= 16) and the number of distinct m, hence of
// cached algorithms, stays bounded; padded rows are zero and are never read back. The batched form (bf16) gives
// every expert the same M rows (the largest padded count): it runs when E * M fits in R, i.e. while the busiest
// expert has at most about twice the average rows (at most half the batched GEMMs' rows are padding).
//
//   perm[R]      entry t * top_k + k of each row (-1: padding)   R = (fp8 ? 1 : 2) entries + min(E, entries) * kLtPad
//   inv[entries] row of each entry (-1: id outside [0, E))
//   offsets[E+1] first row of each expert (device copy of what the host reads back)
//   s13/s2       FP8 weight scales with the k blocks padded to a multiple of 4 (when they are not already)
//   A            gathered x (bf16, or FP8 + token-major scales per segment), later h (same forms)
//   B            gate|up (bf16 [R, 2I]), later y (bf16 [R, H]; the bf16 per-expert loop: float)
#include <algorithm>
#include <cstddef>
#include <numeric>
#include <vector>

namespace troupe::kernels::moe_detail {

constexpr int kLtPad = 16, kLtChunkTokens = 4096;

// Whether the cuBLASLt path beats moe_experts' grouped kernels for a chunk of `entries` (token, expert) pairs over
// `used` experts of hidden H and intermediate I (troupe_kernel_bench moe, H200; docs/BENCHMARKS.md). bf16: from
// kLtBf16MinRows rows per used expert (the batched GEMMs). FP8 (one GEMM pair per expert, on the lanes: ~2 x 7 us of
// calls per expert however small): from kLtFp8MinRows rows when an expert's weights are large enough that the grouped
// kernels' read of them costs more than that (R1, 44 MB per expert: 3.5 against 5.0 ms at 8 rows, 3.6 against 6.9 at
// 16), or when its GEMMs are large (kLtFp8MinExpertFlops); R1 TP8's experts (5.5 MB, 1.4 GFLOP at 128 rows: 2.9
// against 2.6 ms) stay on the grouped kernels. min_rows >= 0 overrides both row counts (TROUPE_MOE_LT_MIN_ROWS).
constexpr int kLtBf16MinRows = 24, kLtFp8MinRows = 8;
constexpr double kLtFp8MinExpertBytes = 32.0 * (1 << 20), kLtFp8MinExpertFlops = 2e9;
inline bool lt_pays(long entries, long used, int H, int I, bool fp8, int min_rows = -1) {
  if (entries <= 0 || used <= 0) return false;
  const double rows = double(entries) / double(used);
  if (rows < (min_rows >= 0 ? min_rows : fp8 ? kLtFp8MinRows : kLtBf16MinRows)) return false;
  return !fp8 || 3.0 * H * I >= kLtFp8MinExpertBytes || 6.0 * H * I * rows >= kLtFp8MinExpertFlops;
}

// Whether an FP8 chunk's expert GEMMs run as one grouped wgmma launch (moe_wgmma.cuh) rather than one cuBLASLt call
// per expert on the lanes: up to kLtWgmmaMaxRows rows per used expert (R1 at 8 / 16 / 32 rows: 2.95 / 3.20 / 3.23
// against 3.44 / 3.58 / 3.60 ms; at 64 rows 4.42 against 3.71, at 128 6.67 against 5.43). mode: the switch
// (TROUPE_MOE_LT_WGMMA), -1 by rows, 0 never, 1 always.
constexpr int kLtWgmmaMaxRows = 32;
constexpr int kLtWgmmaTileRows = 64, kLtWgmmaTileBytes = 8;  // its work items: 64 rows of one expert, 2 x int32
inline bool lt_wgmma_pays(long entries, long used, int mode = -1) {
  if (mode >= 0) return mode > 0;
  return used > 0 && double(entries) / double(used) <= kLtWgmmaMaxRows;
}

inline std::size_t lt_align(std::size_t x) { return (x + 255) / 256 * 256; }
inline int round4(int x) { return (x + 3) / 4 * 4; }

struct LtLayout {
  std::size_t perm = 0, inv = 0, offsets = 0, s13 = 0, s2 = 0, a = 0, a_scale = 0, b = 0, tiles = 0, total = 0;
  std::size_t max_rows = 0, max_tiles = 0;  // tiles: FP8, the grouped wgmma GEMMs' work items
};

inline LtLayout lt_layout(int tokens, int top_k, int E, int H, int I, bool fp8) {
  const std::size_t entries = std::size_t(std::min(tokens, kLtChunkTokens)) * top_k;
  const std::size_t R = entries + (fp8 ? 0 : entries) + std::min<std::size_t>(E, entries) * kLtPad;
  const std::size_t hb = (H + 127) / 128, ib = (I + 127) / 128;
  LtLayout l;
  l.max_rows = R;
  l.inv = lt_align(l.perm + R * 4);
  l.offsets = lt_align(l.inv + entries * 4);
  l.s13 = lt_align(l.offsets + (std::size_t(E) + 1) * 4);
  l.s2 = lt_align(l.s13 + (fp8 ? std::size_t(E) * 2 * ib * round4(int(hb)) * 4 : 0));
  l.a = lt_align(l.s2 + (fp8 ? std::size_t(E) * hb * round4(int(ib)) * 4 : 0));
  const std::size_t a_elems = R * std::max<std::size_t>(H, I);
  l.a_scale = lt_align(l.a + a_elems * (fp8 ? 1 : 2));
  l.b = lt_align(l.a_scale + (fp8 ? R * std::max(hb, ib) * 4 : 0));
  // y: bf16 [R, H] (FP8 experts, bf16 batched) or, bf16 per-expert loop, float over the unbatched rows
  const std::size_t unbatched = entries + std::min<std::size_t>(E, entries) * kLtPad;
  const std::size_t b_bytes = std::max({R * 2 * I * 2, R * H * 2, fp8 ? 0 : unbatched * H * 4});
  l.tiles = lt_align(l.b + b_bytes);
  l.max_tiles = fp8 ? R / kLtWgmmaTileRows + E : 0;  // a segment's tiles: its rows / 64, rounded up
  l.total = lt_align(l.tiles + l.max_tiles * kLtWgmmaTileBytes);
  return l;
}

// The FP8 per-expert GEMMs' lanes (lt_lanes.hpp): rows[e] rows of expert e (0: unused) -> the experts of each of
// `lanes` lanes in issue order. Largest first onto the lane with the fewest rows so far (ties: the lower lane), so
// the lanes end together and the shared expert (every token's rows) has a lane to itself while it runs.
inline std::vector<std::vector<int>> assign_lanes(const std::vector<int>& rows, int lanes) {
  std::vector<int> order(rows.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return rows[a] > rows[b]; });
  std::vector<std::vector<int>> out(std::max(lanes, 1));
  std::vector<long> load(out.size(), 0);
  for (int e : order) {
    if (rows[e] <= 0) break;
    const std::size_t l = std::size_t(std::min_element(load.begin(), load.end()) - load.begin());
    load[l] += rows[e];
    out[l].push_back(e);
  }
  return out;
}

}  // namespace troupe::kernels::moe_detail
