#pragma once
// The few kernels the model needs beyond the kernel contracts (kernels/core, gemm, mla, moe, sampling):
// dummy-weight fills, FP8 block dequantization (kv_b_proj for the absorbed MLA, and FP8 linears whose
// input width is not a multiple of 128), row gathers, biases and logit masks. All asynchronous on `s`.
#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace troupe::cuda {

using bf16 = __nv_bfloat16;
using fp8 = __nv_fp8_e4m3;

// Deterministic N(0, stddev) values from (seed, key, index): a counter-based hash, no curand state.
void fill_normal_bf16(bf16* out, std::size_t n, std::uint64_t seed, std::uint64_t key, float stddev, cudaStream_t s);
void fill_normal_f32(float* out, std::size_t n, std::uint64_t seed, std::uint64_t key, float stddev, cudaStream_t s);
void fill_const_bf16(bf16* out, std::size_t n, float value, cudaStream_t s);
void fill_const_f32(float* out, std::size_t n, float value, cudaStream_t s);
// FP8 dummy weights: e4m3 values of N(0, 1) (clipped to +-448) and every block scale = stddev, so the
// dequantized weight is N(0, stddev) as in the bf16 case.
void fill_normal_fp8(fp8* out, std::size_t n, std::uint64_t seed, std::uint64_t key, cudaStream_t s);

// out[r, c] = bf16(w[r, c] * scale[r / block, c / block]); scale is [ceil(rows/block), ceil(cols/block)].
void dequant_fp8_block(const fp8* w, const float* scale, int rows, int cols, int block, bf16* out, cudaStream_t s);

// dst[i, :] = src[rows[i], :] for i < n (cols elements per row).
void gather_rows_bf16(const bf16* src, const std::int32_t* rows, int n, int cols, bf16* dst, cudaStream_t s);

// x[t, c] += bias[c] for t < n, c < cols (row stride `stride`): Qwen2's q/k/v biases on the fused qkv rows.
void add_bias_bf16(bf16* x, int n, int cols, int stride, const bf16* bias, cudaStream_t s);

// logits[row * vocab + id] = -inf for each (row, id) pair: min_tokens masks EOS and stop ids.
void mask_logits(float* logits, int vocab, const std::int32_t* row_id_pairs, int n, cudaStream_t s);

// The MoE router in float32 end to end, as the cpu oracle computes it: logits[t, e] = sum_i
// (rmsnorm(residual[t]) * norm_w)[i] * w[e, i] with float32 weights (the bf16 router GEMM rounds the
// normed activations and the weights, which can flip near-tied expert choices). One block per token.
void router_logits_f32(const float* residual, const bf16* norm_w, float eps, int n, int hidden, const float* w,
                       int experts, float* out, cudaStream_t s);

}  // namespace troupe::cuda
