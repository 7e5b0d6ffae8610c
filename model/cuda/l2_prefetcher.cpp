#include "model/cuda/l2_prefetcher.hpp"

#include "kernels/core/l2_prefetch.hpp"
#include "model/cuda/cuda_util.hpp"

#include <algorithm>
#include <cstdlib>
#include <vector>

namespace troupe::cuda {
namespace {
std::size_t window_bytes() {
  const char* v = std::getenv("TROUPE_L2_LOOKAHEAD_MB");
  const long mb = v && *v ? std::max(0L, std::atol(v)) : long(L2Prefetcher::kDefaultWindowMb);
  return std::size_t(mb) << 20;
}
}  // namespace

L2Prefetcher::L2Prefetcher() : plan_(window_bytes()) {}

void L2Prefetcher::init() {
  if (plan_.window() == 0 || side_) return;
  TROUPE_CUDA_CHECK(cudaStreamCreateWithFlags(&side_, cudaStreamNonBlocking));
  TROUPE_CUDA_CHECK(cudaEventCreateWithFlags(&fork_, cudaEventDisableTiming));
  TROUPE_CUDA_CHECK(cudaEventCreateWithFlags(&done_, cudaEventDisableTiming));
}

L2Prefetcher::~L2Prefetcher() {
  if (side_) cudaStreamSynchronize(side_);
  if (fork_) cudaEventDestroy(fork_);
  if (done_) cudaEventDestroy(done_);
  if (side_) cudaStreamDestroy(side_);
}

void L2Prefetcher::begin_step(int tokens) {
  plan_.reset();
  on_ = side_ && tokens <= kMaxTokens;
}

void L2Prefetcher::ahead(int item, cudaStream_t main) {
  if (!on_) return;
  const std::vector<L2Lookahead::Range> r = plan_.ahead(item);
  if (r.empty()) return;
  TROUPE_CUDA_CHECK(cudaEventRecord(fork_, main));
  TROUPE_CUDA_CHECK(cudaStreamWaitEvent(side_, fork_, 0));
  for (std::size_t i = 0; i < r.size(); i += kernels::kMaxL2Ranges) {
    kernels::L2Range k[kernels::kMaxL2Ranges];
    const int n = int(std::min<std::size_t>(kernels::kMaxL2Ranges, r.size() - i));
    for (int j = 0; j < n; ++j) k[j] = {reinterpret_cast<const void*>(r[i + j].p), r[i + j].bytes};
    kernels::l2_prefetch(k, n, side_);
  }
  pending_ = true;
}

void L2Prefetcher::join(cudaStream_t main) {
  if (!pending_) return;
  TROUPE_CUDA_CHECK(cudaEventRecord(done_, side_));
  TROUPE_CUDA_CHECK(cudaStreamWaitEvent(main, done_, 0));
  pending_ = false;
}

}  // namespace troupe::cuda
