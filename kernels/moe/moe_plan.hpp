#pragma once
// moe_experts' device-side bookkeeping, laid out in the caller's workspace (host-side, pure).
//
//   (token t, choice k) -> flat entry i = t * top_k + k
//   perm[offset[e] .. offset[e] + count[e])  = the entries routed to expert e (grouped on the device)
//   tiles[j] = {expert, first perm index, rows}: BM-row slices of one expert's entries, the grouped GEMMs' M tiles
//   h[p, inter] = silu(x W_gate^T) * (x W_up^T) of perm entry p (bf16), the second GEMM's input
//
// The grid cannot know the counts without a host sync, so it is sized for the worst case:
//   tiles <= ceil(entries / BM) + min(E, entries)   (each used expert wastes at most one partial tile)
#include <algorithm>
#include <cstddef>

namespace troupe::kernels::moe_detail {

constexpr int kBmDecode = 16, kBmPrefill = 64, kBmPrefillWide = 128;

inline std::size_t align256(std::size_t x) { return (x + 255) / 256 * 256; }

inline int max_tiles(int entries, int num_experts, int bm) {
  return (entries + bm - 1) / bm + std::min(num_experts, entries);
}

// Average rows per used expert decides the M tile: decode batches spread a few tokens over many experts. The
// 128-row prefill tile beat the 64-row one on the H200 even where it pads most (R1 at 4096 tokens: 128 rows per
// expert, padded to about 256: 171 against 146 TFLOP/s; V2-Lite at 1024 tokens, 96 rows: 197 against 149).
inline int choose_bm(int n, int top_k, int num_experts) {
  const long entries = long(n) * top_k;
  const long used = std::min<long>(num_experts, entries);
  if (entries < 48 * used) return kBmDecode;
  return entries >= 64 * used ? kBmPrefillWide : kBmPrefill;
}

// Split-K of the decode gate/up GEMM: when the used experts' (tile, 16-column) CTAs cannot fill two per SM,
// cut K so they do (at least 4 k tiles of 128 per split). Only batches of at most kSplitKMaxEntries entries
// split, which bounds the float gate/up buffer in the workspace.
constexpr int kSplitKMaxEntries = 2048, kDecodeUpCols = 16;
inline int choose_ksplit(int entries, int num_experts, int hidden, int inter, int sm_count) {
  if (entries > kSplitKMaxEntries) return 1;
  const long ctas = long(std::min(num_experts, entries)) * ((inter + kDecodeUpCols - 1) / kDecodeUpCols);
  const int ktiles = (hidden + 127) / 128;
  const long want = (2L * sm_count + ctas - 1) / ctas;
  return int(std::max(1L, std::min<long>(want, ktiles / 4)));
}

struct MoeLayout {
  std::size_t perm = 0, tiles = 0, num_tiles = 0, h = 0, gate_up = 0, total = 0;
};

inline MoeLayout moe_layout(int n, int top_k, int num_experts, int inter) {
  const int entries = n * top_k;
  MoeLayout l;
  l.perm = 0;
  l.tiles = align256(l.perm + std::size_t(entries) * 4);
  l.num_tiles = align256(l.tiles + std::size_t(max_tiles(entries, num_experts, kBmDecode)) * 16);
  l.h = align256(l.num_tiles + 16);
  l.gate_up = align256(l.h + std::size_t(entries) * inter * 2);
  l.total = align256(l.gate_up + std::size_t(std::min(entries, kSplitKMaxEntries)) * 2 * inter * 4);
  return l;
}

}  // namespace troupe::kernels::moe_detail
