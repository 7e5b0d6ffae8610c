// Open-addressing hash map from a merge pair (left id, right id) to its rank and merged id. The merge
// lookup is the innermost operation of BPE, so it avoids std::unordered_map's node-per-entry layout.
#pragma once

#include <cstdint>
#include <vector>

namespace troupe::tok {

class PairTable {
 public:
  struct Merge {
    int32_t rank;
    int32_t id;
  };

  void reserve(size_t n) {
    size_t cap = 16;
    while (cap < n * 2) cap <<= 1;
    slots_.assign(cap, Slot{kEmpty, {0, 0}});
    mask_ = cap - 1;
  }

  // Later inserts of the same pair replace earlier ones (HF builds a HashMap from the merge list).
  void insert(int32_t left, int32_t right, Merge m) {
    uint64_t key = make_key(left, right);
    for (size_t i = index(key);; i = (i + 1) & mask_) {
      if (slots_[i].key == kEmpty || slots_[i].key == key) {
        slots_[i] = {key, m};
        return;
      }
    }
  }

  const Merge* find(int32_t left, int32_t right) const {
    uint64_t key = make_key(left, right);
    for (size_t i = index(key);; i = (i + 1) & mask_) {
      if (slots_[i].key == key) return &slots_[i].merge;
      if (slots_[i].key == kEmpty) return nullptr;
    }
  }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  struct Slot {
    uint64_t key;
    Merge merge;
  };
  static uint64_t make_key(int32_t l, int32_t r) {
    return uint64_t(uint32_t(l)) << 32 | uint32_t(r);
  }
  size_t index(uint64_t key) const { return size_t((key * 0x9E3779B97F4A7C15ull) >> 20) & mask_; }

  std::vector<Slot> slots_{16, Slot{kEmpty, {0, 0}}};
  size_t mask_ = 15;
};

}  // namespace troupe::tok
