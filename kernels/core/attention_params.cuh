#pragma once
// The launch parameters shared by paged_attention's kernels (kernels/core/paged_attention.cu and
// decode_attention.cuh). Device code only.
#include <cuda_bf16.h>

#include <cstdint>

namespace troupe::kernels::detail {

using bf16 = __nv_bfloat16;

struct Params {
  const bf16* q;
  int q_stride, num_heads, num_kv_heads, group, head_chunks;
  const bf16* k_cache;
  const bf16* v_cache;
  const std::int32_t *token_seq, *positions, *block_tables;
  int max_blocks, block_size, splits, split_len;
  int num_tokens;
  bool mma_tiles;    // uniform 64-token prefill tiles are computed by prefill_attention_mma instead
  bool decode_mma;   // the other tokens use decode_mma_kernel (tensor cores) instead of the per-lane kernel
  float scale_log2;  // softmax scale * log2(e): scores live in the exp2 domain
  bf16* out;
  float* part_acc;   // [tokens, heads, splits, D] unnormalised, when splits > 1
  float* part_ml;    // [tokens, heads, splits, 2] running max (log2 domain) and sum
};

}  // namespace troupe::kernels::detail
