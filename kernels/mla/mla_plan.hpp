#pragma once
// How mla_attention_absorbed cuts a batch into CTAs (host-side, pure): shared by the launcher and
// mla_workspace_bytes so that the workspace always covers what a launch writes.
//
//   fast path (latent 512 + rope 64): one CTA = (token tile, head block, KV split)
//     16 query rows per CTA = tokens_per_tile tokens x heads_per_block heads (heads_per_block = min(H, 16)),
//     so every cached row loaded into shared memory serves 16 (token, head) rows.
//     KV positions [split * split_len, (split + 1) * split_len) of each row's causal range go to one split;
//     the split count minimises waves x work per CTA (a batch that fills 1.5 waves is better cut in two).
//   generic path (any other dims): one CTA = (token, head), no split.
#include <algorithm>
#include <cstddef>

namespace troupe::kernels::mla_detail {

constexpr int kFastLatent = 512, kFastRope = 64;
constexpr int kRowsPerCta = 16;   // query rows of one mma M tile
constexpr int kKvTile = 64;       // cached rows per pipeline stage
constexpr int kMinTilesPerSplit = 2;  // a split's partial (16 x 512 floats) must stay small against its reads
constexpr int kMaxLatentGeneric = 1024;
constexpr int kMaxSplits = 64;

// Whether a batch takes mla_absorb.hpp's fused W_UK / W_UV GEMVs: decode sizes (their per-head weights are read
// once per token; past 4 tokens the batched GEMMs' tensor cores win) at the fast path's widths, q_nope up to 256.
constexpr int kAbsorbMaxTokens = 4, kAbsorbMaxNope = 256;
inline bool absorb_shape_ok(int num_tokens, int latent_dim, int rope_dim, int nope, int v_dim) {
  return num_tokens >= 1 && num_tokens <= kAbsorbMaxTokens && latent_dim == kFastLatent && rope_dim == kFastRope &&
         nope >= 1 && nope <= kAbsorbMaxNope && v_dim >= 1;
}

struct MlaPlan {
  int heads_per_block = 1, tokens_per_tile = 1, head_blocks = 1, token_tiles = 1;
  int splits = 1, split_len = 0;
};

inline MlaPlan plan_fast(int num_tokens, int num_heads, int max_seq_len, int sm_count) {
  MlaPlan p;
  p.heads_per_block = std::min(num_heads, kRowsPerCta);
  p.tokens_per_tile = kRowsPerCta / p.heads_per_block;
  p.head_blocks = (num_heads + p.heads_per_block - 1) / p.heads_per_block;
  p.token_tiles = (num_tokens + p.tokens_per_tile - 1) / p.tokens_per_tile;
  const long items = long(p.token_tiles) * p.head_blocks;
  const int kv_tiles = std::max(1, (max_seq_len + kKvTile - 1) / kKvTile);
  // Cost of s splits in units of one KV tile's time: waves x (tiles per split + 1 for the CTA's pipeline fill
  // and epilogue). One CTA fits an SM (187 KB of shared memory). More splits must win by 5%: each one also
  // writes and merges 16 x 512 float partials, which the cost leaves out.
  const int max_splits = std::max(1, std::min(kMaxSplits, kv_tiles / kMinTilesPerSplit));
  int splits = 1;
  long best = -1;
  for (int s = 1; s <= max_splits; ++s) {
    const long waves = (items * s + sm_count - 1) / sm_count;
    const long cost = waves * ((kv_tiles + s - 1) / s + 1);
    if (best < 0 || cost * 20 < best * 19) best = cost, splits = s;
  }
  const int tiles_per_split = (kv_tiles + splits - 1) / splits;
  p.split_len = tiles_per_split * kKvTile;
  p.splits = (kv_tiles + tiles_per_split - 1) / tiles_per_split;  // no split left empty by rounding
  return p;
}

// Bytes of split partials a launch with this plan writes: per (split, token, head) latent floats + one lse.
inline std::size_t partial_bytes(const MlaPlan& p, int num_tokens, int num_heads, int latent_dim) {
  if (p.splits <= 1) return 0;
  return std::size_t(p.splits) * num_tokens * num_heads * (std::size_t(latent_dim) + 1) * sizeof(float);
}

}  // namespace troupe::kernels::mla_detail
