#include "tests/cuda/timeline_dump.hpp"

#include "kernels/core/timeline.hpp"
#include "model/cuda/cuda_model.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace troupe::smoke {
namespace {
constexpr unsigned kCapacity = 1u << 20;
}

TimelineCapture::TimelineCapture() {
  const char* env = std::getenv("TROUPE_TIMELINE");
  if (!env || !*env) return;
  prefix_ = env;
  TROUPE_CUDA_CHECK(cudaMalloc(&records_, kCapacity * sizeof(kernels::TimelineRecord)));
  TROUPE_CUDA_CHECK(cudaMalloc(&count_, sizeof(unsigned)));
  TROUPE_CUDA_CHECK(cudaMemset(count_, 0, sizeof(unsigned)));
  kernels::timeline_attach({static_cast<kernels::TimelineRecord*>(records_), count_, kCapacity});
}

TimelineCapture::~TimelineCapture() {
  if (prefix_.empty()) return;
  kernels::timeline_attach({});
  cudaFree(records_);
  cudaFree(count_);
}

void TimelineCapture::finish(cudaStream_t s, int steps, const std::string& label) {
  if (prefix_.empty()) return;
  TROUPE_CUDA_CHECK(cudaStreamSynchronize(s));
  kernels::timeline_attach({});
  unsigned n = 0;
  TROUPE_CUDA_CHECK(cudaMemcpy(&n, count_, sizeof n, cudaMemcpyDeviceToHost));
  n = std::min(n, kCapacity);
  std::vector<kernels::TimelineRecord> r(n);
  TROUPE_CUDA_CHECK(cudaMemcpy(r.data(), records_, n * sizeof r[0], cudaMemcpyDeviceToHost));
  const std::string path = prefix_ + "_" + label + ".txt";
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (!f || steps < 2 || n % unsigned(steps) != 0) {
    std::fprintf(stderr, "timeline %s: %u records over %d steps, not written\n", path.c_str(), n, steps);
    if (f) std::fclose(f);
    return;
  }
  // Step 0 (the first after attaching) is left out; position k's span ends at record k + 1 (the last position's at
  // the next step's first record, so the final step's last position has none).
  const unsigned per = n / unsigned(steps);
  std::fprintf(f, "# %s: %u kernels per step, %d steps; us from this kernel's wait to the next one's\n", label.c_str(),
               per, steps - 1);
  std::fprintf(f, "# pos grid block mean min max\n");
  double total = 0;
  for (unsigned k = 0; k < per; ++k) {
    double sum = 0, lo = 1e30, hi = 0;
    int cnt = 0;
    for (int st = 1; st < steps; ++st) {
      const std::size_t i = std::size_t(st) * per + k;
      if (i + 1 >= n) break;
      const double us = double(r[i + 1].ns - r[i].ns) / 1e3;
      sum += us, lo = std::min(lo, us), hi = std::max(hi, us), ++cnt;
    }
    if (!cnt) continue;
    total += sum / cnt;
    std::fprintf(f, "%4u %6u %5u %8.2f %8.2f %8.2f\n", k, r[k].grid, r[k].block, sum / cnt, lo, hi);
  }
  std::fprintf(f, "# sum of means %.2f us\n", total);
  std::fclose(f);
  std::printf("timeline: %s (%u kernels per step, %.1f us)\n", path.c_str(), per, total);
}

}  // namespace troupe::smoke
