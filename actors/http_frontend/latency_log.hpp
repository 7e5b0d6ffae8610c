#pragma once
// A fixed-memory latency histogram (1 µs buckets to 10 ms, then an overflow bucket) with exact-bucket
// percentiles: cheap enough to record every streamed token on the frontend's hot path.
#include <array>
#include <cstdint>

namespace troupe {

class LatencyLog {
 public:
  static constexpr std::uint32_t kBuckets = 10000;  // µs
  void record_ns(std::int64_t ns, std::uint64_t count = 1);
  std::uint64_t count() const { return total_; }
  // The smallest bucket (µs) at or below which fraction q of the samples fall; kBuckets = overflow.
  double percentile_us(double q) const;

 private:
  std::array<std::uint64_t, kBuckets + 1> buckets_{};
  std::uint64_t total_ = 0;
};

}  // namespace troupe
