// Cache of BPE results per piece. encode() is const and may run on several threads, so the cache is split
// into shards, each with its own mutex; a full shard is simply cleared (bounded memory, no LRU bookkeeping:
// the hot words of a language come back within a few thousand pieces).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace troupe::tok {

class WordCache {
 public:
  static constexpr size_t kMaxWordBytes = 256;  // longer pieces are rare and not worth keeping (HF: 256)

  // Appends the cached ids of `word` to `out`; false on a miss.
  bool get(std::string_view word, std::vector<int32_t>& out) const {
    size_t h = std::hash<std::string_view>{}(word);
    Shard& s = shards_[h % kShards];
    std::lock_guard lock(s.mutex);
    auto it = s.map.find(word);
    if (it == s.map.end()) return false;
    out.insert(out.end(), it->second.begin(), it->second.end());
    return true;
  }

  void put(std::string_view word, const int32_t* ids, size_t n) const {
    size_t h = std::hash<std::string_view>{}(word);
    Shard& s = shards_[h % kShards];
    std::lock_guard lock(s.mutex);
    if (s.map.size() >= kShardCapacity) s.map.clear();
    s.map.emplace(std::string(word), std::vector<int32_t>(ids, ids + n));
  }

 private:
  static constexpr size_t kShards = 16;
  static constexpr size_t kShardCapacity = 8192;
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  struct Shard {
    std::mutex mutex;
    std::unordered_map<std::string, std::vector<int32_t>, Hash, std::equal_to<>> map;
  };
  mutable std::array<Shard, kShards> shards_;
};

}  // namespace troupe::tok
