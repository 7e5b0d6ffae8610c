#pragma once
// The decode GEMV's launch plan (gemv.hpp): pure C++, tested in CI without a GPU (gemv_plan_test.cpp).
#include <algorithm>

namespace troupe::kernels::gemv {

constexpr int kMaxM = 4;
constexpr int kWarps = 8;
// Rows this long or longer stay on the GEMM paths: the GEMV's float32 FMAs cost ~60 instructions per 16-byte FP8
// chunk, and on R1's o_proj (16 KiB rows, 7168 of them: one wave) it streamed 49% of HBM against the small-m
// kernel's 57% (troupe_kernel_bench gemv / gemm_small_m, docs/BENCHMARKS.md); shorter rows it wins.
constexpr int kMaxRowBytes = 16384;

struct Plan {
  int rows = 0;    // R: rows per warp (1, 2 or 4)
  int splits = 0;  // S: warps per row group (1, 2, 4 or 8)
  int blocks = 0;
  bool ok = false;  // false: shape unsupported (m > 4; k not a multiple of 8 for bf16, of 128 for FP8;
                    // rows of kMaxRowBytes or more)
};

// Pure host logic (checked in kernel_plan_test).
inline Plan plan(int m, int n, int k, int elem_bytes, int sms) {
  Plan p;
  if (m < 1 || m > kMaxM || n < 1 || k < 1 || (elem_bytes != 1 && elem_bytes != 2)) return p;
  if (k % (elem_bytes == 1 ? 128 : 8) != 0 || k * elem_bytes >= kMaxRowBytes) return p;
  const int chunks = k * elem_bytes / 16, per_lane = (chunks + 31) / 32;
  p.rows = 1;
  while (p.rows < 4 && per_lane * p.rows < 8) p.rows *= 2;
  const int groups = (n + p.rows - 1) / p.rows, want = 32 * std::max(sms, 1);  // ~32 warps per SM
  p.splits = 1;
  while (p.splits < kWarps && groups * p.splits < want && chunks / (2 * p.splits) >= 64) p.splits *= 2;
  const int per_block = kWarps / p.splits;
  p.blocks = (groups + per_block - 1) / per_block;
  p.ok = true;
  return p;
}

}  // namespace troupe::kernels::gemv
