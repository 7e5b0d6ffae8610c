#pragma once
// Which query tokens the tensor-core prefill kernel takes: the flattened batch is cut into tiles of 64
// tokens (tile q = tokens [64q, 64q + 64)); a tile is "uniform" when it is full and its tokens are one
// sequence at consecutive positions (the inside of a prefill chunk). Uniform tiles go to
// prefill_attention_mma; every other token (decode tokens, chunk edges) to the per-token kernel. Both
// kernels evaluate this same predicate, so each token is computed exactly once.
//
//   tokens:   | chunk A (150 tokens)          | d | d | chunk B ...
//   tiles:    [   0..63   ][  64..127  ][ 128..191 ]
//              uniform      uniform      mixed -> per-token path
#include <cstdint>

namespace troupe::kernels::detail {

constexpr int kPrefillTile = 64;

// Evaluated by one whole warp (every lane must call it); true for every token of a uniform tile.
__device__ __forceinline__ bool prefill_tile_uniform(const std::int32_t* token_seq, const std::int32_t* positions,
                                                     int num_tokens, int tile) {
  const int first = tile * kPrefillTile;
  if (first + kPrefillTile > num_tokens) return false;
  const int lane = threadIdx.x % 32;
  const int s0 = token_seq[first], p0 = positions[first];
  bool ok = true;
  for (int i = lane; i < kPrefillTile; i += 32) ok &= token_seq[first + i] == s0 && positions[first + i] == p0 + i;
  return __all_sync(0xffffffffu, ok);
}

}  // namespace troupe::kernels::detail
