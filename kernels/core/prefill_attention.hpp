#pragma once
// Internal to kernels/core: the tensor-core path of paged_attention for the uniform 64-token tiles of
// prefill chunks (prefill_tile.cuh). paged_attention launches it next to its per-token kernel.
#include "kernels/core/batch.hpp"

#include <cuda_bf16.h>
#include <cuda_runtime.h>

namespace troupe::kernels::detail {

bool prefill_mma_supported(int head_dim);
// scale_log2: the softmax scale times log2(e).
void prefill_attention_mma(const __nv_bfloat16* q, int q_stride, int num_heads, int num_kv_heads, int head_dim,
                           const __nv_bfloat16* k_cache, const __nv_bfloat16* v_cache, const AttnBatch& b,
                           float scale_log2, __nv_bfloat16* out, cudaStream_t s);

}  // namespace troupe::kernels::detail
