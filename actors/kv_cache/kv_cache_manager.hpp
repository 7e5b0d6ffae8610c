#pragma once
// Per-request block tables over a BlockPool, with vLLM v1's prefix caching (KVCacheManager's
// get_computed_blocks + allocate_slots + free). No actor inside: kv_cache_actor is a shell around exchange().
//
//   request 7: tokens 0..15 -> block 3, 16..31 -> block 9, 32..40 -> block 4   (block-size 16)
//   table[7] = [3, 9, 4]; a request that covers n tokens holds ceil(n / block_size) blocks.
//
// Prefix cache: block i of a request is known by hash(parent = hash of block i-1, its token ids); the
// scheduler computes the chain, the manager treats hashes as opaque keys. A request the manager holds no
// blocks of first takes the cached blocks of its longest matching prefix, up to but excluding the block of
// its last known token. Blocks a request fills are registered in the cache at the start of the next
// exchange: the step that writes their KV has run by then (one step is in flight at a time).
#include "actors/kv_cache/block_pool.hpp"
#include "runtime/schema/messages.hpp"

#include <cstdint>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

namespace troupe {

struct KvGrantOut {
  bool ok = false;
  std::vector<std::uint32_t> new_blocks;  // hits first, then fresh blocks
  std::uint32_t num_cached_tokens = 0;
  std::uint32_t num_tokens = 0;           // tokens the table now covers
};

struct KvCacheStats {
  std::uint64_t queries = 0, hits = 0;  // tokens looked up / found by new requests
};

class KvCacheManager {
 public:
  KvCacheManager(std::uint32_t num_blocks, std::uint32_t block_size, bool prefix_caching);

  // One batched exchange: register last exchange's filled blocks, free, then allocate in order.
  KvReplyMsg exchange(const KvRequestMsg& req);

  // Grows the table of `id` to cover `num_tokens` tokens (all or nothing for a request it holds). A new
  // request may be granted fewer tokens than cached + asked when evictable hits leave too few free blocks.
  // num_known_tokens 0: no prefix-cache lookup (a request that must compute every position, e.g. one that
  // wants prompt logprobs); its filled blocks still enter the cache.
  KvGrantOut allocate(std::uint64_t id, std::uint32_t num_tokens, std::span<const std::uint64_t> new_hashes,
                      std::uint32_t num_known_tokens);
  void free(std::uint64_t id);  // unknown ids are ignored (a request that never got a block)
  void commit_pending();         // filled blocks become cache hits
  // The prefix cache forgets everything, pending blocks included: a re-formed worker group lost the KV.
  void reset_prefix_cache();

  std::uint32_t blocks_for(std::uint32_t num_tokens) const { return (num_tokens + block_size_ - 1) / block_size_; }
  std::uint32_t num_free() const { return pool_.num_free(); }
  std::uint32_t num_total() const { return pool_.num_total(); }
  std::uint32_t num_cached() const { return pool_.num_cached(); }
  std::uint32_t num_owned() const;  // sum of table lengths (shared blocks count once per holder)
  std::size_t num_tables() const { return tables_.size(); }
  const std::vector<std::uint32_t>* table(std::uint64_t id) const;
  const KvCacheStats& stats() const { return stats_; }
  // Empty when every block's reference count equals the number of tables holding it, no block sits twice
  // in one table and the pool agrees with itself; else what is wrong. O(blocks): tests only.
  std::string check() const;

 private:
  struct Table {
    std::vector<std::uint32_t> blocks;
    std::vector<std::uint64_t> hashes;  // the request's full-block hash chain, as far as sent
    std::uint32_t num_registered = 0;   // leading blocks already in the cache or queued for it
  };
  KvGrantOut allocate_new(Table& t, std::uint32_t num_tokens, std::uint32_t num_known);
  void queue_filled(Table& t, std::uint32_t covered_tokens);

  BlockPool pool_;
  std::uint32_t block_size_;
  bool prefix_caching_;
  std::unordered_map<std::uint64_t, Table> tables_;
  std::vector<std::pair<std::uint32_t, std::uint64_t>> pending_;  // (block, hash) filled this exchange
  std::vector<std::uint32_t> hits_;                               // scratch
  KvCacheStats stats_;
};

}  // namespace troupe
