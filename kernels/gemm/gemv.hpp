#pragma once
// Decode GEMVs: C[m, n] = X[m, k] W[n, k]^T for m <= 4 tokens, bf16 activations against FP8 weights (128x128
// block scales) or bf16 weights. At m = 1 a projection is a weight read, and every fixed cost shows: the small-m
// kernel (small_m.hpp) needs the activations quantized first (one more launch), multiplies 16-row mma tiles of
// which 15 rows are zero and sums split-K partials in a second phase; measured on R1's decode projections it
// reached 22-69% of HBM (docs/BENCHMARKS.md). Here warps own whole output rows: each lane streams 16-byte weight
// chunks straight into registers, a batch of them in flight at once, and multiplies them with the bf16
// activations (read through L1, which every warp of an SM shares) in float32. Numerics: the FP8 weights times
// unquantized bf16 activations, as the cpu oracle computes them and the MoE GEMVs do (kernels/moe/moe_gemv.cuh).
//
//   block = 8 warps = (8 / S) row groups x S k-splits;  row group = R adjacent rows
//   warp (group g, split s): rows [g R, g R + R) over chunks [s C/S, (s + 1) C/S), C = k bytes / 16
//   the S warps of a group add their partials in shared memory (fixed order: deterministic)
//
// R grows for short rows (R1's q_b: k = 1536 is 3 chunks per lane) so that each lane has ~8 loads in flight;
// S grows for small n (V2-Lite's kv_a: 576 rows) so that every SM has warps. Rows of 16 KiB and more (R1's
// o_proj and dense down) are left to the small-m kernel, whose mma takes 512 weight bytes per instruction where
// these float32 FMAs take ~60 instructions per 16 bytes (gemv_plan.hpp).
#include "kernels/gemm/gemv_plan.hpp"

#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

namespace troupe::kernels::gemv {

// C (bf16) = X W^T; W e4m3 [n, k] with w_scale [ceil(n/128), k/128]. X, W 16-byte aligned. Requires plan().ok.
void fp8(const __nv_bfloat16* x, const __nv_fp8_e4m3* w, const float* w_scale, __nv_bfloat16* c, int m, int n,
         int k, const Plan& p, cudaStream_t s);

// C = X W^T (+ C when accumulate); C bf16 or float32 (the residual add). Requires plan().ok.
void bf16(const __nv_bfloat16* x, const __nv_bfloat16* w, void* c, bool out_f32, bool accumulate, int m, int n,
          int k, const Plan& p, cudaStream_t s);

}  // namespace troupe::kernels::gemv
