#pragma once
// Dense GEMMs through cuBLASLt. Weights are [n, k] row-major as checkpoints store them (out_features x
// in_features), activations [m, k] row-major: C[m, n] = A[m, k] * W[n, k]^T. One Gemm per worker (it owns
// the cuBLASLt handle, the workspace and a cache of chosen algorithms per shape). FP8 calls with m <= 8 tokens
// (decode) go to the small-m kernels (small_m.hpp) when the shape allows; bf16 can (set_small_m_max) but by
// default stays on cuBLASLt, which is faster there.
#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <memory>

namespace troupe::kernels {

enum class OutType { bf16, f32 };

class Gemm {
 public:
  explicit Gemm(std::size_t workspace_bytes = std::size_t(32) << 20);
  ~Gemm();
  Gemm(const Gemm&) = delete;
  Gemm& operator=(const Gemm&) = delete;

  // C = A * W^T (+ C when accumulate, for residual adds in float32).
  void bf16(const __nv_bfloat16* a, const __nv_bfloat16* w, void* c, OutType out, int m, int n, int k,
            cudaStream_t s, bool accumulate = false);

  // Per batch entry i: C_i = A_i * W_i^T with element strides between entries (MLA's per-head W_UK / W_UV
  // absorption). lda/ldw/ldc are row strides in elements. w_transposed: W_i is stored [k, n] (ldw >= n) and
  // C_i = A_i * W_i (W_UK as it sits in kv_b_proj); otherwise W_i is [n, k] (ldw >= k).
  void bf16_batched(const __nv_bfloat16* a, int lda, long long stride_a, const __nv_bfloat16* w, int ldw,
                    long long stride_w, __nv_bfloat16* c, int ldc, long long stride_c, int batch, int m, int n,
                    int k, bool w_transposed, cudaStream_t s);

  // DeepSeek FP8: W [n, k] e4m3 with one float32 per 128x128 block (w_scale [ceil(n/128), k/128], the
  // checkpoint's weight_scale_inv), A [m, k] e4m3 with one float32 per 1x128 group (a_scale [m, k/128]).
  // C is bf16. m is padded internally (to a multiple of 4, at least 16) and the activation scales are
  // re-laid token-major for cuBLASLt, in scratch buffers that grow with cudaMalloc on the first call of a
  // larger shape: run each shape once before capturing a CUDA graph.
  void fp8_block(const __nv_fp8_e4m3* a, const float* a_scale, const __nv_fp8_e4m3* w, const float* w_scale,
                 __nv_bfloat16* c, int m, int n, int k, cudaStream_t s);

  // fp8_block for operands already in cuBLASLt's layouts (the MoE prefill path lays them out so): a_scale_tm is
  // token-major ([k/128, m]), m % 4 == 0 and m >= 16, w_scale's rows padded to a multiple of 4 k blocks
  // ([ceil(n/128), roundup(k/128, 4)]). No staging buffers, no copies; the algorithm is cached per shape. It runs
  // without workspace (no split-K): the MoE path runs several Gemms' calls at once, and with the GPU shared that
  // way split-K's extra reduction costs more than it helps (troupe_kernel_bench moe, docs/BENCHMARKS.md).
  void fp8_block_tm(const __nv_fp8_e4m3* a, const float* a_scale_tm, const __nv_fp8_e4m3* w, const float* w_scale,
                    __nv_bfloat16* c, int m, int n, int k, cudaStream_t s);

  // Largest m that fp8_block() / bf16() send to the small-m kernels (0: always cuBLASLt; at most 16).
  // The environment variable TROUPE_GEMM_SMALL_M="FP8_MAX,BF16_MAX" (or one number for both) overrides the
  // defaults at construction: before/after measurements, or to rule the kernels out when hunting a bug.
  void set_small_m_max(int fp8_max, int bf16_max);
  // Allocates fp8_block's scratch for every shape up to (max_m, max_n, max_k) now: CUDA graphs that
  // capture fp8_block need it never to move.
  void reserve_fp8(int max_m, int max_n, int max_k);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace troupe::kernels
