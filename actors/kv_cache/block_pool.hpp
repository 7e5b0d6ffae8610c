#pragma once
// The paged KV cache's blocks, without any actor: reference counts, the prefix cache (block hash -> block)
// and the free list, which doubles as the eviction order.
//
//   free list:  [uncached free blocks ...][cached free blocks, least recently freed first ...]
//               ^ allocate() takes from here: plain free blocks go first, then the LRU cached block
//
// A cached block keeps its content after its last holder lets go, so a later request with the same prefix
// can take it back (touch) until allocate() evicts it. Block ids index the workers' KV memory.
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace troupe {

class BlockPool {
 public:
  explicit BlockPool(std::uint32_t num_blocks);

  // Appends n fresh blocks to `out` (reference 1, no hash), evicting cached ones as needed; all or nothing.
  bool allocate(std::uint32_t n, std::vector<std::uint32_t>& out);
  // A cache hit: one more holder. A block nobody held leaves the free list.
  void touch(std::uint32_t id);
  // One holder fewer; throws std::logic_error when nobody held it.
  void release(std::uint32_t id);
  // The block's content is now known by `hash`; the first block with a hash wins, duplicates stay uncached.
  void cache(std::uint32_t id, std::uint64_t hash);
  std::optional<std::uint32_t> lookup(std::uint64_t hash) const;
  // Every block loses its hash (its KV is gone: the workers were replaced); free blocks stay free.
  void forget_all();

  std::uint32_t num_free() const { return num_free_; }  // nobody holds them (cached ones included)
  std::uint32_t num_total() const { return static_cast<std::uint32_t>(ref_.size()); }
  std::uint32_t num_cached() const { return static_cast<std::uint32_t>(cached_.size()); }
  std::uint32_t ref(std::uint32_t id) const { return ref_[id]; }
  bool is_cached(std::uint32_t id) const { return has_hash_[id]; }
  // Empty when the free list, reference counts and cache map agree; else what is wrong. O(blocks): tests only.
  std::string check() const;

 private:
  void unlink(std::uint32_t id);
  void link_before(std::uint32_t id, std::uint32_t pos);  // pos == sentinel: append
  void evict(std::uint32_t id);

  std::vector<std::uint32_t> ref_;
  std::vector<std::uint64_t> hash_;
  std::vector<bool> has_hash_;
  std::vector<std::uint32_t> prev_, next_;  // the free list; index num_total() is its sentinel
  std::uint32_t sentinel_;
  std::uint32_t num_free_ = 0;
  std::unordered_map<std::uint64_t, std::uint32_t> cached_;
};

}  // namespace troupe
