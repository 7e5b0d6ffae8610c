#pragma once
// Tensor-parallel slicing at load time. A column-parallel linear (q/k/v, gate/up; HF weights are
// [out, in]) keeps rows — whole heads or MLP columns; a row-parallel one (o_proj, down_proj) keeps
// columns; experts are split by index (shard_range over n_routed_experts, then load only those).
// With world 1 every shard is the whole tensor, so one code path serves one GPU and many.
#include "model/checkpoint/checkpoint.hpp"

#include <cstdint>
#include <vector>

namespace troupe {

struct ShardRange {
  std::int64_t begin = 0, size = 0;
};

// Rank `rank`'s contiguous part of a dimension of `size` elements split evenly over `world` ranks, in
// whole units of `granule` (a head's width; 1 for plain rows). Throws CheckpointError when it does not
// divide evenly, since uneven tensor-parallel shards would disagree between ranks.
ShardRange shard_range(std::int64_t size, std::uint32_t rank, std::uint32_t world, std::int64_t granule = 1);

// The shape of one shard: `shape` with dimension `dim` divided by `world`.
std::vector<std::int64_t> shard_shape(std::vector<std::int64_t> shape, int dim, std::uint32_t world);

// Rank `rank`'s slice of `t` along `dim` (0 = rows, 1 = columns, ...), converted to f32. FP8 weights
// are dequantized with their block `scale_inv` using full-tensor coordinates, so a slice that cuts
// through a 128-block still gets the right scale.
std::vector<float> shard_f32(const TensorView& t, int dim, std::uint32_t rank, std::uint32_t world,
                             const TensorView* scale_inv = nullptr, std::int64_t granule = 1,
                             std::int64_t block = 128);

}  // namespace troupe
