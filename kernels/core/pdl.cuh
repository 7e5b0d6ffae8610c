#pragma once
// Programmatic dependent launch (sm_90): a kernel launched with launch_pdl (launch.hpp) may be scheduled while the
// kernel before it on the stream still runs its last wave, so its prologue (the weight loads of a decode GEMV,
// which no earlier kernel writes) overlaps that tail instead of waiting out a launch gap. Contract:
//   - a PDL kernel calls pdl_wait() before it reads anything an earlier kernel wrote, or writes anything at all;
//     griddepcontrol.wait returns once the previous grid has completed and its memory is visible;
//   - pdl_trigger() lets the next PDL kernel be scheduled; a PDL kernel calls it only after its own pdl_wait()
//     (so everything before the previous grid is complete too when the next one starts its prologue), a kernel
//     launched plainly may call it first thing. Without it, the trigger is implicit at grid exit.
// Both are no-ops for kernels launched without the attribute.

namespace troupe::kernels::detail {

__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

__device__ __forceinline__ void pdl_trigger() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

}  // namespace troupe::kernels::detail
