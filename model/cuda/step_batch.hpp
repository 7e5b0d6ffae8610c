#pragma once
// One step's inputs, packed on the host into a single int32 buffer so the device gets them in one copy.
// Pure logic (no CUDA): validated here, so a bad token id or a short block table is a clear error
// before any kernel runs.
//
//   packed = | tokens [T] | token_seq [T] | positions [T] | slot_mapping [T] | seq_lens [S] |
//            | logits_rows [R] | block_tables [S x max_blocks] |
//
// T: tokens of all chunks, S: non-empty chunks, R: chunks that want logits (their last token's row).
#include <cstdint>
#include <span>
#include <vector>

namespace troupe::cuda {

struct StepChunk {
  std::span<const std::int32_t> tokens;        // this step's tokens of one sequence
  std::uint32_t start_pos = 0;                 // position of tokens[0]; earlier positions are in the cache
  std::span<const std::uint32_t> block_table;  // the sequence's KV blocks
  bool wants_logits = true;
};

struct StepLayout {
  int num_tokens = 0, num_seqs = 0, num_logits = 0, max_blocks = 0, max_seq_len = 0;
  // element offsets into the packed buffer
  int tokens = 0, token_seq = 0, positions = 0, slot_mapping = 0, seq_lens = 0, logits_rows = 0, block_tables = 0;
  int total = 0;
};

struct StepLimits {
  std::uint32_t vocab = 0, block_size = 16, num_blocks = 0;
  std::uint32_t max_tokens = 0, max_seqs = 0, max_blocks_per_seq = 0;
};

// Throws std::invalid_argument naming the chunk for a token id outside the vocabulary, a block table
// that does not cover its positions, a block id out of range, or a step over the limits.
StepLayout pack_step(std::span<const StepChunk> chunks, const StepLimits& lim, std::vector<std::int32_t>& out);

}  // namespace troupe::cuda
