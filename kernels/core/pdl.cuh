#pragma once
// Programmatic dependent launch (sm_90): a kernel launched with launch_pdl (launch.hpp) may be scheduled while the
// kernel before it on the stream still runs its last wave, so its prologue (the weight loads of a decode GEMV,
// which no earlier kernel writes) overlaps that tail instead of waiting out a launch gap. Contract:
//   - a PDL kernel calls pdl_wait() before it reads anything the kernel right before it wrote, or writes anything at
//     all (what older kernels wrote is complete and visible when it starts: see pdl_trigger below);
//     griddepcontrol.wait returns once the previous grid has completed and its memory is visible;
//   - pdl_trigger() lets the next PDL kernel be scheduled; a PDL kernel calls it only after its own pdl_wait()
//     (so everything before the previous grid is complete too when the next one starts its prologue), a kernel
//     launched plainly may call it first thing. Without it, the trigger is implicit at grid exit.
// Both are no-ops for kernels launched without the attribute. pdl_wait() also feeds the timeline (timeline.hpp).
#include "kernels/core/timeline.hpp"

#include <cuda_runtime.h>

namespace troupe::kernels::detail {
namespace {

struct DeviceTimeline {  // TimelineBuffer without initializers: a __device__ variable needs static initialization
  TimelineRecord* records;
  unsigned* count;
  unsigned capacity;
};

__device__ DeviceTimeline g_timeline;  // this translation unit's copy (zero: detached)

void set_timeline(const TimelineBuffer& b) {
  const DeviceTimeline d{b.records, b.count, b.capacity};
  cudaMemcpyToSymbol(g_timeline, &d, sizeof d);
}

[[maybe_unused]] const bool g_timeline_registered = timeline_register(&set_timeline);

// One record by thread 0 of block (0,0,0), `block` = blockDim.x for a kernel's wait, or a caller's tag: a phase
// inside a kernel (timeline_mark), for a look at where its time goes.
__device__ __forceinline__ void timeline_record(unsigned block) {
  if (threadIdx.x | threadIdx.y | blockIdx.x | blockIdx.y | blockIdx.z) return;
  const DeviceTimeline tl = g_timeline;
  if (!tl.records) return;
  std::uint64_t ns;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(ns));
  const unsigned i = atomicAdd(tl.count, 1u);
  if (i < tl.capacity) tl.records[i] = TimelineRecord{ns, gridDim.x * gridDim.y * gridDim.z, block};
}

}  // namespace

// A phase boundary inside a kernel on the timeline (tag shown in the block column; kept out of committed kernels).
__device__ __forceinline__ void timeline_mark(unsigned tag) { timeline_record(tag); }

__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
  timeline_record(blockDim.x);
}

__device__ __forceinline__ void pdl_trigger() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

}  // namespace troupe::kernels::detail
