#pragma once
// The FP8 MoE prefill path's lanes: each expert's two cuBLASLt GEMMs are small (~128 rows: 32-56 output tiles on
// 132 SMs) and each call costs ~10 us of host time (cuBLASLt's FP8 block-scaled dispatch), so one thread on one
// stream leaves the GPU both underfilled and waiting on the host. A lane is a thread with its own cuBLASLt handle
// (its own Gemm) and stream; lane 0 is the caller's thread, Gemm and stream.
//
//   caller: record fork on s ---- hand lanes 1.. their GEMMs ---- issue lane 0's on s ---- wait for the helpers
//   lane l:        wait fork on its stream, issue its GEMMs, record join[l]              \-> s waits on join[l]
#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <memory>
#include <vector>

namespace troupe::kernels {

class Gemm;

// One Gemm::fp8_block_tm call.
struct Fp8TmCall {
  const __nv_fp8_e4m3* a;
  const float* a_scale_tm;
  const __nv_fp8_e4m3* w;
  const float* w_scale;
  __nv_bfloat16* c;
  int m, n, k;
};

class LtLanes {
 public:
  static constexpr int kMaxLanes = 8;
  // The current device's lanes, created on first use and kept for the process (the helper threads idle on a
  // condition variable between calls). TROUPE_MOE_LT_LANES (1 .. kMaxLanes, default 4) sets how many.
  static LtLanes& of_current_device();
  int lanes() const { return lanes_; }
  // calls[l] on lane l; returns once every call is issued, with s ordered after all of them. A helper's error is
  // rethrown here.
  void run(Gemm& gemm, cudaStream_t s, const std::vector<std::vector<Fp8TmCall>>& calls);

  ~LtLanes();
  struct Impl;

 private:
  explicit LtLanes(int device, int lanes);
  int lanes_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace troupe::kernels
