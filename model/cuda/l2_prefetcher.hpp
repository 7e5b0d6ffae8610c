#pragma once
// The decode step's L2 lookahead on the GPU: the window of l2_lookahead.hpp, its ranges prefetched by
// kernels::l2_prefetch on a side stream forked from the model's stream at each point, joined back at the end of
// the step (inside a CUDA graph capture this becomes a branch of prefetch nodes beside the layer's kernels, so
// the programmatic edges between the layer's own kernels stay as they are). Off for steps of more than
// kMaxTokens tokens (their projections are GEMMs that read each weight once per tile row anyway) and when the
// window is 0. TROUPE_L2_LOOKAHEAD_MB sets the window (0: off, for A/B).
#include "model/cuda/l2_lookahead.hpp"

#include <cuda_runtime.h>

#include <cstddef>

namespace troupe::cuda {

class L2Prefetcher {
 public:
  static constexpr int kMaxTokens = 16;
  static constexpr std::size_t kDefaultWindowMb = 0;

  L2Prefetcher();
  ~L2Prefetcher();
  // The side stream and events, on the current device (the model calls it after choosing its device).
  void init();
  L2Prefetcher(const L2Prefetcher&) = delete;
  L2Prefetcher& operator=(const L2Prefetcher&) = delete;

  // The step's read order (see L2Lookahead::add).
  int add(const void* p, std::size_t bytes) { return plan_.add(p, bytes); }
  int size() const { return plan_.size(); }
  std::size_t window() const { return plan_.window(); }

  void begin_step(int tokens);
  // The kernel reading item i is about to be launched on `main`.
  void ahead(int item, cudaStream_t main);
  // Before the step's last kernels: `main` waits for the side stream (a capture must end joined).
  void join(cudaStream_t main);

 private:
  L2Lookahead plan_;
  cudaStream_t side_ = nullptr;
  cudaEvent_t fork_ = nullptr, done_ = nullptr;
  bool on_ = false, pending_ = false;
};

}  // namespace troupe::cuda
