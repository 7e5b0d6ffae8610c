#pragma once
// The per-step description of a mixed batch that every attention kernel reads: prefill chunks and decode
// tokens of different sequences, flattened to one row per query token. Built on the host by the cuda
// backend each step and copied to the device (all pointers are device pointers).
//
//   query tokens:  t0 t1 t2 t3 | t4 | t5 t6      (seq 0: a 4-token prefill chunk, seq 1: decode, seq 2: chunk)
//   token_seq:      0  0  0  0 |  1 |  2  2
//   positions:      8  9 10 11 | 41 |  0  1      (token t attends to cache positions 0..positions[t])
//   slot_mapping:  block_tables[seq][pos / block_size] * block_size + pos % block_size
#include <cstdint>

namespace troupe::kernels {

struct AttnBatch {
  int num_tokens = 0;
  int num_seqs = 0;
  const std::int32_t* token_seq = nullptr;     // [num_tokens] sequence index of each query token
  const std::int32_t* positions = nullptr;     // [num_tokens] absolute position (causal limit, rope angle)
  const std::int32_t* slot_mapping = nullptr;  // [num_tokens] cache slot that receives this token's KV
  const std::int32_t* block_tables = nullptr;  // [num_seqs, max_blocks_per_seq] block ids, row-major
  const std::int32_t* seq_lens = nullptr;      // [num_seqs] tokens in the cache after this step
  int max_blocks_per_seq = 0;
  int block_size = 16;
  int max_seq_len = 0;                         // max of seq_lens (host-known: sizes the split-KV grid)
};

}  // namespace troupe::kernels
