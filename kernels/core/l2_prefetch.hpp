#pragma once
// Weights pulled into L2 ahead of the kernels that read them (decode at batch 1-16, where each projection is a
// short weight read and every kernel pays its own ramp: docs/BENCHMARKS.md, "hbm_stream"). The ranges go to the
// copy engines as cp.async.bulk.prefetch.L2 requests from a few SMs and the kernel exits at once: nothing waits
// for the bytes, the GEMV that reads them later finds them in L2 (its own loads are marked evict-first,
// kernels/core/dot.cuh, so the weights streaming through meanwhile do not push these out first).
#include <cuda_runtime.h>

#include <cstddef>

namespace troupe::kernels {

struct L2Range {
  const void* p = nullptr;  // 16-byte aligned
  std::size_t bytes = 0;    // rounded down to 16
};

constexpr int kMaxL2Ranges = 4;

// Prefetches up to kMaxL2Ranges ranges on `s` (a plain launch: the caller orders it, e.g. on a side stream).
void l2_prefetch(const L2Range* ranges, int n, cudaStream_t s);

}  // namespace troupe::kernels
