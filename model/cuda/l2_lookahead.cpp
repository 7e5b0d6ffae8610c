#include "model/cuda/l2_lookahead.hpp"

#include <algorithm>
#include <stdexcept>

namespace troupe::cuda {

int L2Lookahead::add(const void* p, std::size_t bytes) {
  ptr_.push_back(reinterpret_cast<std::uintptr_t>(p));
  start_.push_back(total_);
  total_ += bytes;
  return int(start_.size()) - 1;
}

std::vector<L2Lookahead::Range> L2Lookahead::ahead(int i) {
  if (i < 0 || i > size()) throw std::out_of_range("L2Lookahead::ahead: no such item");
  std::vector<Range> out;
  if (window_ == 0) return out;
  const std::size_t from = i == size() ? total_ : start_[std::size_t(i)];
  const std::size_t target = std::min(total_, from + window_);
  front_ = std::max(front_, from);  // what the kernels already read is not worth prefetching
  // The item holding front_, then every item up to target.
  std::size_t j = std::size_t(std::upper_bound(start_.begin(), start_.end(), front_) - start_.begin());
  for (j = j ? j - 1 : 0; j < start_.size() && front_ < target; ++j) {
    const std::size_t end = j + 1 < start_.size() ? start_[j + 1] : total_;
    if (front_ >= end) continue;
    const std::size_t lo = front_ - start_[j];
    std::size_t hi = std::min(end, target) - start_[j];
    if (start_[j] + hi < end) hi = std::min(end - start_[j], (hi + kAlign - 1) / kAlign * kAlign);
    if (hi > lo) out.push_back({ptr_[j] + lo, hi - lo});
    front_ = start_[j] + hi;
  }
  return out;
}

}  // namespace troupe::cuda
