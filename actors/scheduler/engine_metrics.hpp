#pragma once
// Latency histograms the scheduler keeps (it sees every request's arrival, first schedule and tokens), with
// vLLM's bucket bounds so dashboards built for vLLM read them unchanged. Observing is a binary search over
// about 20 bounds: cheap enough for every token of every step.
#include "runtime/schema/messages.hpp"

#include <algorithm>
#include <cstdint>
#include <vector>

namespace troupe {

class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)), counts_(bounds_.size() + 1, 0) {}
  void observe(double v) {
    // Prometheus buckets are "le": a value equal to a bound belongs to that bound's bucket.
    auto i = std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin();
    ++counts_[static_cast<std::size_t>(i)];
    sum_ += v;
    ++count_;
  }
  void fill(schema::Histogram::Builder b) const {
    auto ub = b.initUpperBounds(static_cast<unsigned>(bounds_.size()));
    for (unsigned i = 0; i < bounds_.size(); ++i) ub.set(i, bounds_[i]);
    auto c = b.initBucketCounts(static_cast<unsigned>(counts_.size()));
    for (unsigned i = 0; i < counts_.size(); ++i) c.set(i, counts_[i]);
    b.setSum(sum_);
    b.setCount(count_);
  }
  std::uint64_t count() const { return count_; }
  double sum() const { return sum_; }

 private:
  std::vector<double> bounds_;
  std::vector<std::uint64_t> counts_;  // one per bound, then +Inf
  double sum_ = 0;
  std::uint64_t count_ = 0;
};

struct LatencyHistograms {
  // vLLM v1's buckets (vllm/v1/metrics/loggers.py).
  Histogram ttft{{0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0,
                  40.0, 80.0, 160.0, 640.0, 2560.0}};
  Histogram itl{{0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0,
                 80.0}};
  Histogram e2e{{0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0,
                 480.0, 960.0, 1920.0, 7680.0}};
  Histogram queue{{0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0,
                   480.0, 960.0, 1920.0, 7680.0}};
};

}  // namespace troupe
