#pragma once
// The host side of DeepSeek's non-absorbed MLA prefill (kernels/mla/mla_prefill.hpp) for one step: which
// chunks take it, the plan of pieces over their contexts, and the absorbed rows that remain (decode tokens and
// short chunks), all uploaded once per step and read by every layer.
//
// Threshold (min_queries, default 32): the non-absorbed form first expands the whole context of a chunk
// (L keys x heads x (nope + v) x latent x 2 flops: 262k per key and head for V3) and then spends 640 flops
// per (query, key) pair and head; the absorbed form spends 2176 per pair, in a kernel made for decode that
// runs prefill at ~100 TFLOP/s; the expansion GEMM runs at several hundred and mla_prefill_attention at ~190.
// Per key and head: absorbed n x 2176 / 100e12 s against 262k / 600e12 + n x 640 / 190e12: equal at n ~ 24;
// a chunk of one token (decode) or a handful is cheaper absorbed, and reads only the latent cache.
#include "kernels/mla/mla_prefill_plan.hpp"
#include "model/cuda/cuda_util.hpp"
#include "model/cuda/step_batch.hpp"

#include <cstdint>
#include <span>
#include <vector>

namespace troupe::cuda {

class MlaPrefillStep {
 public:
  // min_queries <= 0 turns the path off (every chunk absorbed); piece_rows bounds the expanded keys per piece.
  void configure(int min_queries, int piece_rows, int tile_q) {
    min_q_ = min_queries, piece_rows_ = piece_rows, tile_q_ = tile_q;
  }
  int tile_q() const { return tile_q_; }
  int min_queries() const { return min_q_; }
  int piece_rows() const { return piece_rows_; }
  // The step's chunks in pack_step's order (empty chunks skipped: sequence index = index among the
  // non-empty ones). Uploads on `s`; the caller has synchronized the stream since the previous step, so the
  // pinned staging buffer is free.
  void plan(std::span<const StepChunk> chunks, cudaStream_t s);
  void clear() { active_ = false; }
  bool active() const { return active_; }

  int absorbed_rows() const { return absorbed_; }
  const std::int32_t* absorbed_idx() const { return dev_i32() + off_idx_; }        // step row of each
  const std::int32_t* absorbed_seq() const { return dev_i32() + off_idx_ + absorbed_; }
  const std::int32_t* absorbed_pos() const { return dev_i32() + off_idx_ + 2 * absorbed_; }
  const kernels::MlaPrefillSeg* segs() const {
    return reinterpret_cast<const kernels::MlaPrefillSeg*>(dev_i32() + off_segs_);
  }
  const std::int32_t* tiles() const { return dev_i32() + off_tiles_; }
  const std::vector<kernels::MlaPrefillPiece>& pieces() const { return plan_.pieces; }

 private:
  const std::int32_t* dev_i32() const { return dev_.get<std::int32_t>(); }

  int min_q_ = 0, piece_rows_ = 0, tile_q_ = kernels::kMlaPrefillTileQ;
  bool active_ = false;
  int absorbed_ = 0, off_idx_ = 0, off_segs_ = 0, off_tiles_ = 0;
  kernels::MlaPrefillPlan plan_;
  std::vector<std::int32_t> host_;
  PinnedBuffer pinned_;
  DeviceBuffer dev_;
};

}  // namespace troupe::cuda
