#include "actors/http_frontend/latency_log.hpp"

#include <algorithm>
#include <cmath>

namespace troupe {

void LatencyLog::record_ns(std::int64_t ns, std::uint64_t count) {
  auto us = static_cast<std::uint64_t>(std::max<std::int64_t>(ns, 0) / 1000);
  buckets_[std::min<std::uint64_t>(us, kBuckets)].fetch_add(count, std::memory_order_relaxed);
  total_.fetch_add(count, std::memory_order_relaxed);
}

namespace {

// The smallest bucket at or below which fraction q of `total` samples fall; `at(i)` counts bucket i.
template <class At>
double percentile_of(std::uint64_t total, double q, At at) {
  if (total == 0) return 0;
  auto want = static_cast<std::uint64_t>(std::ceil(q * double(total)));
  std::uint64_t seen = 0;
  for (std::uint32_t i = 0; i <= LatencyLog::kBuckets; ++i) {
    seen += at(i);
    if (seen >= want && seen > 0) return i;
  }
  return LatencyLog::kBuckets;
}

std::atomic<std::uint64_t> next_log_id{1};

}  // namespace

double LatencyLog::percentile_us(double q) const {
  return percentile_of(count(), q, [&](std::uint32_t i) { return bucket(i); });
}

ShardedLatencyLog::ShardedLatencyLog() : id_(next_log_id.fetch_add(1)) {}

LatencyLog& ShardedLatencyLog::shard() {
  thread_local std::vector<std::pair<std::uint64_t, LatencyLog*>> mine;  // this thread's shards, by log id
  for (auto& [id, log] : mine)
    if (id == id_) return *log;
  std::lock_guard lk(mu_);
  shards_.push_back(std::make_unique<LatencyLog>());
  mine.emplace_back(id_, shards_.back().get());
  return *shards_.back();
}

std::uint64_t ShardedLatencyLog::count() const {
  std::lock_guard lk(mu_);
  std::uint64_t n = 0;
  for (auto& s : shards_) n += s->count();
  return n;
}

double ShardedLatencyLog::percentile_us(double q) const {
  std::lock_guard lk(mu_);
  std::uint64_t n = 0;
  for (auto& s : shards_) n += s->count();
  return percentile_of(n, q, [&](std::uint32_t i) {
    std::uint64_t c = 0;
    for (auto& s : shards_) c += s->bucket(i);
    return c;
  });
}

}  // namespace troupe
