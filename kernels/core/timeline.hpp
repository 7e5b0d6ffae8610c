#pragma once
// An in-graph timeline of the programmatic (PDL) kernels, for finding where a decode step's time goes on a device
// without Nsight Systems (it is not installed there; ncu serializes kernels and so hides the PDL overlap).
// When attached, block (0,0,0) of every kernel that calls detail::pdl_wait() appends one record the moment its wait
// returns, i.e. the moment the kernel before it completed: consecutive records' differences are the time each
// kernel held the critical path. Detached (the default) the check costs one load by one thread per kernel.
#include <cstdint>

namespace troupe::kernels {

struct TimelineRecord {
  std::uint64_t ns;     // %globaltimer when the wait returned
  std::uint32_t grid;   // gridDim.x * gridDim.y * gridDim.z: tells the kernels of a step apart
  std::uint32_t block;  // blockDim.x
};

struct TimelineBuffer {
  TimelineRecord* records = nullptr;  // device memory, `capacity` records
  unsigned* count = nullptr;          // device counter; records past capacity are counted, not written
  unsigned capacity = 0;
};

// Points every kernel translation unit's copy at `buf` (all zero: detach). Synchronous.
void timeline_attach(const TimelineBuffer& buf);

namespace detail {
using TimelineSetter = void (*)(const TimelineBuffer&);
// Each translation unit that includes pdl.cuh registers the setter of its own device copy (no -rdc: one per unit).
bool timeline_register(TimelineSetter set);
}  // namespace detail

}  // namespace troupe::kernels
