#pragma once
// troupe_cuda_check --smoke with TROUPE_TIMELINE=PREFIX: the graphs pass of each decode row records the in-graph
// timeline (kernels/core/timeline.hpp) and writes PREFIX_<layers>_<row>.txt: per kernel position of a step, the
// mean / min / max microseconds from its wait returning to the next kernel's, over the timed steps.
#include <cuda_runtime.h>

#include <string>

namespace troupe::smoke {

class TimelineCapture {
 public:
  // Attaches when TROUPE_TIMELINE is set (otherwise does nothing at all).
  TimelineCapture();
  ~TimelineCapture();
  TimelineCapture(const TimelineCapture&) = delete;
  TimelineCapture& operator=(const TimelineCapture&) = delete;
  // Detaches and writes the table of the `steps` equal steps recorded since attaching, for `label`; the first of
  // them is left out of it (see timeline_dump.cpp).
  void finish(cudaStream_t s, int steps, const std::string& label);

 private:
  std::string prefix_;
  void* records_ = nullptr;
  unsigned* count_ = nullptr;
};

}  // namespace troupe::smoke
