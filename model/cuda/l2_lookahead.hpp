#pragma once
// Which weights to pull into L2 ahead of a decode step's kernels: a window sliding over the weights the step
// reads in a fixed order (layer by layer: q_a|kv_a, q_b, kv_b, o_proj, router or the dense MLP). Before the
// kernel that reads item i is launched, the window moves to [start(i), start(i) + window) and the part not
// asked for yet is returned, so at any time about `window` bytes prefetched but not yet read sit in L2.
//
//   items:   | qkv_a | q_b        | kv_b     | o_proj                 | router | qkv_a (next layer) ...
//   ahead(1):        [==== window ====)
//   ahead(2):                   [..already..|=== new ===)
//
// Items whose bytes are only known at run time (the routed experts) are not items: the point before them asks
// for the next layer's first item, so the window runs ahead while they stream. Pure host logic (unit-tested).
#include <cstddef>
#include <cstdint>
#include <vector>

namespace troupe::cuda {

class L2Lookahead {
 public:
  struct Range {
    std::uintptr_t p = 0;
    std::size_t bytes = 0;
    bool operator==(const Range&) const = default;
  };
  // Slice boundaries inside an item are rounded up to this (the prefetch takes 16-byte multiples).
  static constexpr std::size_t kAlign = 4096;

  explicit L2Lookahead(std::size_t window = 0) : window_(window) {}
  void set_window(std::size_t bytes) { window_ = bytes; }
  std::size_t window() const { return window_; }

  // Appends the next item of the step's read order; returns its index.
  int add(const void* p, std::size_t bytes);
  int size() const { return int(start_.size()); }

  // A new step: nothing is prefetched.
  void reset() { front_ = 0; }
  // The kernel reading item i (size() for "past the last") is next: the ranges to prefetch now, in read order.
  std::vector<Range> ahead(int i);

 private:
  std::vector<std::uintptr_t> ptr_;
  std::vector<std::size_t> start_;  // offset of each item in the concatenated stream
  std::size_t total_ = 0, front_ = 0, window_ = 0;
};

}  // namespace troupe::cuda
