#pragma once
// Decode-sized dense GEMMs (m <= 16 tokens): C[m, n] = A[m, k] W[n, k]^T. At such m a GEMM is a weight read;
// cuBLASLt's FP8 path (staging copies + tiles built for large m) leaves most of the bandwidth unused (docs/
// BENCHMARKS.md, "cuBLASLt GEMMs", "Small-m GEMMs"). Here every weight byte is read once with 128-bit loads,
// the m tokens sit in shared memory, and mma.sync multiplies 16 weight rows by 8 or 16 tokens; split-K gives
// every SM work when n is small, and the last block of each row tile sums the splits in a fixed order
// (deterministic). Measured: see BENCHMARKS.md; FP8 is faster than cuBLASLt at m <= 8, bf16 is not.
//
// FP8 takes the activations as the FP8 path already quantizes them (e4m3 with 1x128 scales): the contract of
// Gemm::fp8_block is unchanged, the numerics are those of the cuBLASLt path (e4m3 x e4m3 products summed per
// 128-wide block, then scaled in float32), and the tokens take half the shared memory of bf16.
#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>

namespace troupe::kernels::small_m {

constexpr int kMaxM = 16;           // tokens per launch (two n8 mma tiles)
constexpr int kRowsPerBlock = 64;   // 4 warps x 16 weight rows
constexpr int kMaxChunkBytes = 2048;  // k-range of one block, in bytes of one row (its tokens sit in smem)
constexpr int kSplitCap = 16;         // more splits than this only where kMaxChunkBytes demands it: the last
                                      // block of a tile reads every split's partials

// Scratch the split-K path needs; the Gemm owns it (allocated at start-up, so calls are graph-safe).
struct Workspace {
  float* partials = nullptr;        // [splits, m, n] float32
  std::size_t partial_bytes = 0;
  unsigned* counters = nullptr;     // one per row tile, zero between calls (the last block resets its own)
  int counter_slots = 0;
};

struct Plan {
  int tiles = 0;     // row tiles of kRowsPerBlock
  int splits = 0;    // k-ranges
  int kb_per = 0;    // 128-wide k blocks per split
  bool ok = false;   // false: shape or scratch unsupported, use cuBLASLt
};

// Pure host logic (checked in gemm_small_m_test): enough blocks for ~4 per SM (at most kSplitCap splits),
// at most kMaxChunkBytes of k per block, and the partials must fit the workspace.
inline Plan plan(int m, int n, int k, int elem_bytes, int sms, const Workspace& ws) {
  Plan p;
  if (m < 1 || m > kMaxM || n < 1 || k < 128 || k % 128 != 0) return p;
  const int kbs = k / 128, kb_max = kMaxChunkBytes / (128 * elem_bytes);
  p.tiles = (n + kRowsPerBlock - 1) / kRowsPerBlock;
  const int want = (4 * std::max(sms, 1) + p.tiles - 1) / p.tiles;
  const int splits = std::min(kbs, std::max(std::min(want, kSplitCap), (kbs + kb_max - 1) / kb_max));
  p.kb_per = (kbs + splits - 1) / splits;
  p.splits = (kbs + p.kb_per - 1) / p.kb_per;
  if (p.splits > 1) {
    if (p.tiles > ws.counter_slots || !ws.partials) return p;
    if (std::size_t(p.splits) * m * n * sizeof(float) > ws.partial_bytes) return p;
  }
  p.ok = true;
  return p;
}

// 16-byte aligned operands and rows (k % 128 == 0 makes every row 16-byte aligned).
inline bool aligned(const void* a, const void* w) {
  return (reinterpret_cast<std::size_t>(a) | reinterpret_cast<std::size_t>(w)) % 16 == 0;
}

// C (bf16) = A W^T, W e4m3 with w_scale [ceil(n/128), k/128], A e4m3 with a_scale [m, k/128]. Requires plan().ok.
void fp8(const __nv_fp8_e4m3* a, const float* a_scale, const __nv_fp8_e4m3* w, const float* w_scale,
         __nv_bfloat16* c, int m, int n, int k, const Plan& p, const Workspace& ws, cudaStream_t s);

// C = A W^T (+ C when accumulate), bf16 inputs; C bf16 or float32. Requires plan().ok.
void bf16(const __nv_bfloat16* a, const __nv_bfloat16* w, void* c, bool out_f32, bool accumulate, int m, int n,
          int k, const Plan& p, const Workspace& ws, cudaStream_t s);

}  // namespace troupe::kernels::small_m
