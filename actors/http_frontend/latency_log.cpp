#include "actors/http_frontend/latency_log.hpp"

#include <algorithm>
#include <cmath>

namespace troupe {

void LatencyLog::record_ns(std::int64_t ns, std::uint64_t count) {
  auto us = static_cast<std::uint64_t>(std::max<std::int64_t>(ns, 0) / 1000);
  buckets_[std::min<std::uint64_t>(us, kBuckets)] += count;
  total_ += count;
}

double LatencyLog::percentile_us(double q) const {
  if (total_ == 0) return 0;
  auto want = static_cast<std::uint64_t>(std::ceil(q * double(total_)));
  std::uint64_t seen = 0;
  for (std::uint32_t i = 0; i <= kBuckets; ++i) {
    seen += buckets_[i];
    if (seen >= want && seen > 0) return i;
  }
  return kBuckets;
}

}  // namespace troupe
