#pragma once
// A fixed-memory latency histogram (1 µs buckets to 10 ms, then an overflow bucket) with exact-bucket
// percentiles: cheap enough to record every streamed token on the frontend's hot path. Recording is
// thread-safe (relaxed atomic counters): the HTTP threads that format tokens all record into one log.
#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

namespace troupe {

class LatencyLog {
 public:
  static constexpr std::uint32_t kBuckets = 10000;  // µs
  void record_ns(std::int64_t ns, std::uint64_t count = 1);
  std::uint64_t count() const { return total_.load(std::memory_order_relaxed); }
  std::uint64_t bucket(std::uint32_t i) const { return buckets_[i].load(std::memory_order_relaxed); }
  // The smallest bucket (µs) at or below which fraction q of the samples fall; kBuckets = overflow.
  // Read once recording has stopped (a concurrent read sees a consistent-enough snapshot, nothing more).
  double percentile_us(double q) const;

 private:
  std::array<std::atomic<std::uint64_t>, kBuckets + 1> buckets_{};
  std::atomic<std::uint64_t> total_{0};
};

// One LatencyLog per recording thread, merged when read: threads that record every token never share a
// counter's cache line (a shared one cost the HTTP threads more than the work they measured).
class ShardedLatencyLog {
 public:
  ShardedLatencyLog();
  void record_ns(std::int64_t ns, std::uint64_t count = 1) { shard().record_ns(ns, count); }
  std::uint64_t count() const;
  double percentile_us(double q) const;  // over all threads' samples

 private:
  LatencyLog& shard();
  std::uint64_t id_;  // unique per log ever made: threads cache their shard by it, never by address
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<LatencyLog>> shards_;
};

}  // namespace troupe
