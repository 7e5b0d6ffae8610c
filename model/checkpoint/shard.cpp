#include "model/checkpoint/shard.hpp"

#include <cstring>

namespace troupe {

ShardRange shard_range(std::int64_t size, std::uint32_t rank, std::uint32_t world, std::int64_t granule) {
  if (world == 0 || rank >= world)
    throw CheckpointError("shard: rank " + std::to_string(rank) + " is outside a world of " + std::to_string(world));
  if (granule <= 0 || size % (granule * world) != 0)
    throw CheckpointError("shard: a dimension of " + std::to_string(size) + " does not split into " +
                          std::to_string(world) + " equal parts of whole " + std::to_string(granule) + "-wide units");
  std::int64_t part = size / world;
  return {part * rank, part};
}

std::vector<std::int64_t> shard_shape(std::vector<std::int64_t> shape, int dim, std::uint32_t world) {
  if (dim < 0 || std::size_t(dim) >= shape.size())
    throw CheckpointError("shard: dimension " + std::to_string(dim) + " out of range");
  shape[dim] /= world;
  return shape;
}

namespace {
// Multiplies each element of the (outer x part x inner) slice by its block's scale; only 2-D weights
// carry block scales, so dim picks whether the slice offset moves the row or the column.
void apply_block_scale(std::vector<float>& out, const TensorView& t, const TensorView& s, int dim, ShardRange r,
                       std::int64_t block) {
  check_fp8_scale(t, s, block);
  std::int64_t rows = dim == 0 ? r.size : t.shape[0], cols = dim == 1 ? r.size : t.shape[1];
  std::int64_t r0 = dim == 0 ? r.begin : 0, c0 = dim == 1 ? r.begin : 0;
  const float* sp = reinterpret_cast<const float*>(s.data);
  for (std::int64_t i = 0; i < rows; ++i)
    for (std::int64_t j = 0; j < cols; ++j) {
      float sc;
      std::memcpy(&sc, sp + ((r0 + i) / block) * s.shape[1] + (c0 + j) / block, 4);
      out[i * cols + j] *= sc;
    }
}
}  // namespace

std::vector<float> shard_f32(const TensorView& t, int dim, std::uint32_t rank, std::uint32_t world,
                             const TensorView* scale_inv, std::int64_t granule, std::int64_t block) {
  if (dim < 0 || std::size_t(dim) >= t.shape.size())
    throw CheckpointError("shard: tensor '" + t.name + "' has no dimension " + std::to_string(dim));
  ShardRange r;
  try {
    r = shard_range(t.shape[dim], rank, world, granule);
  } catch (const CheckpointError& e) {
    throw CheckpointError("tensor '" + t.name + "': " + e.what());
  }
  std::int64_t outer = 1, inner = 1;
  for (int i = 0; i < dim; ++i) outer *= t.shape[i];
  for (std::size_t i = dim + 1; i < t.shape.size(); ++i) inner *= t.shape[i];
  std::size_t es = dtype_size(t.dtype);
  std::vector<float> out(std::size_t(outer * r.size * inner));
  std::int64_t run = r.size * inner;  // contiguous elements per outer index
  for (std::int64_t o = 0; o < outer; ++o) {
    const std::byte* src = t.data + std::size_t((o * t.shape[dim] + r.begin) * inner) * es;
    convert_run(t.dtype, src, std::size_t(run), out.data() + o * run);
  }
  if (scale_inv) apply_block_scale(out, t, *scale_inv, dim, r, block);
  return out;
}

}  // namespace troupe
