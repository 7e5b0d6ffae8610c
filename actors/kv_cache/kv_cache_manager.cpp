#include "actors/kv_cache/kv_cache_manager.hpp"

#include <algorithm>
#include <stdexcept>

namespace troupe {

KvCacheManager::KvCacheManager(std::uint32_t num_blocks, std::uint32_t block_size, bool prefix_caching)
  : pool_(num_blocks), block_size_(block_size), prefix_caching_(prefix_caching) {
  if (block_size == 0) throw std::invalid_argument("block size must be positive");
}

void KvCacheManager::commit_pending() {
  // A block freed before its step ran holds no trustworthy content; only blocks still held are registered.
  for (auto [block, hash] : pending_)
    if (pool_.ref(block) > 0) pool_.cache(block, hash);
  pending_.clear();
}

void KvCacheManager::queue_filled(Table& t, std::uint32_t covered_tokens) {
  if (!prefix_caching_) return;
  auto full = std::min<std::size_t>(covered_tokens / block_size_, t.hashes.size());
  for (std::size_t i = t.num_registered; i < full; ++i) pending_.emplace_back(t.blocks[i], t.hashes[i]);
  t.num_registered = std::max<std::uint32_t>(t.num_registered, static_cast<std::uint32_t>(full));
}

// get_computed_blocks + allocate_slots for a request the manager holds nothing of.
KvGrantOut KvCacheManager::allocate_new(Table& t, std::uint32_t num_tokens, std::uint32_t num_known) {
  KvGrantOut g;
  hits_.clear();
  std::uint32_t evictable = 0;  // hits nobody holds: taking them costs a free block each
  if (prefix_caching_ && num_known > 0) {
    std::size_t max_hits = std::min<std::size_t>((num_known - 1) / block_size_, t.hashes.size());
    for (std::size_t i = 0; i < max_hits; ++i) {
      auto b = pool_.lookup(t.hashes[i]);
      if (!b) break;
      hits_.push_back(*b);
      evictable += pool_.ref(*b) == 0;
    }
    stats_.queries += num_known;
    stats_.hits += hits_.size() * block_size_;
  }
  auto hits = static_cast<std::uint32_t>(hits_.size());
  std::uint32_t cached = hits * block_size_;
  std::uint32_t end = cached + num_tokens;
  if (num_known > 0) end = std::min(end, std::max(num_known, num_tokens));
  std::uint32_t fresh = blocks_for(end) - hits;
  if (fresh + evictable > pool_.num_free()) {
    // Short of blocks: compute fewer tokens this step rather than give up the hits (chunked prefill).
    std::uint32_t avail = pool_.num_free() > evictable ? pool_.num_free() - evictable : 0;
    end = std::min(end, (hits + avail) * block_size_);
    if (end <= cached) return g;
    fresh = blocks_for(end) - hits;
  }
  for (auto b : hits_) pool_.touch(b);
  t.blocks = hits_;
  pool_.allocate(fresh, t.blocks);
  t.num_registered = hits;
  g.ok = true;
  g.new_blocks = t.blocks;
  g.num_cached_tokens = cached;
  g.num_tokens = end;
  return g;
}

KvGrantOut KvCacheManager::allocate(std::uint64_t id, std::uint32_t num_tokens,
                                    std::span<const std::uint64_t> new_hashes, std::uint32_t num_known_tokens) {
  auto [it, fresh] = tables_.try_emplace(id);
  Table& t = it->second;
  if (prefix_caching_) t.hashes.insert(t.hashes.end(), new_hashes.begin(), new_hashes.end());
  KvGrantOut g;
  if (t.blocks.empty()) {
    g = allocate_new(t, num_tokens, num_known_tokens);
    if (!g.ok) {
      tables_.erase(it);  // a failed first allocation leaves no table (and forgets the hashes)
      return g;
    }
  } else {
    std::uint32_t want = blocks_for(num_tokens);
    auto have = static_cast<std::uint32_t>(t.blocks.size());
    if (want > have) {
      auto from = t.blocks.size();
      if (!pool_.allocate(want - have, t.blocks)) return g;
      g.new_blocks.assign(t.blocks.begin() + static_cast<std::ptrdiff_t>(from), t.blocks.end());
    }
    g.ok = true;
    g.num_tokens = num_tokens;
  }
  queue_filled(t, g.num_tokens);
  return g;
}

void KvCacheManager::free(std::uint64_t id) {
  auto it = tables_.find(id);
  if (it == tables_.end()) return;
  // Tail first: of this request's cached blocks, the deepest prefix is evicted first (vLLM's order).
  auto& blocks = it->second.blocks;
  for (auto b = blocks.rbegin(); b != blocks.rend(); ++b) pool_.release(*b);
  tables_.erase(it);
}

void KvCacheManager::reset_prefix_cache() {
  pending_.clear();
  // A request still holding blocks keeps them; its num_registered stays, so blocks its old workers filled
  // are never registered again.
  pool_.forget_all();
}

KvReplyMsg KvCacheManager::exchange(const KvRequestMsg& req) {
  auto v = req.view();
  commit_pending();
  for (auto id : v->getFrees()) free(id);
  if (v->getResetPrefixCache()) reset_prefix_cache();
  auto allocs = v->getAllocs();
  std::vector<std::uint64_t> hashes;
  return KvReplyMsg::make([&](schema::KvReply::Builder b) {
    auto grants = b.initGrants(allocs.size());
    for (unsigned i = 0; i < allocs.size(); ++i) {
      auto a = allocs[i];
      hashes.clear();
      for (auto h : a.getBlockHashes()) hashes.push_back(h);
      auto g = allocate(a.getRequestId(), a.getNumTokens(), hashes, a.getNumKnownTokens());
      auto out = grants[i];
      out.setRequestId(a.getRequestId());
      out.setOk(g.ok);
      out.setNumCachedTokens(g.num_cached_tokens);
      out.setNumTokens(g.num_tokens);
      auto ids = out.initNewBlockIds(static_cast<unsigned>(g.new_blocks.size()));
      for (unsigned j = 0; j < g.new_blocks.size(); ++j) ids.set(j, g.new_blocks[j]);
    }
    b.setNumFreeBlocks(num_free());
    b.setNumTotalBlocks(num_total());
    b.setNumCachedBlocks(num_cached());
  });
}

std::uint32_t KvCacheManager::num_owned() const {
  std::uint32_t n = 0;
  for (auto& [id, t] : tables_) n += static_cast<std::uint32_t>(t.blocks.size());
  return n;
}

const std::vector<std::uint32_t>* KvCacheManager::table(std::uint64_t id) const {
  auto it = tables_.find(id);
  return it == tables_.end() ? nullptr : &it->second.blocks;
}

std::string KvCacheManager::check() const {
  if (auto e = pool_.check(); !e.empty()) return e;
  std::vector<std::uint32_t> holders(pool_.num_total(), 0);
  for (auto& [id, t] : tables_) {
    std::vector<std::uint32_t> sorted = t.blocks;
    std::sort(sorted.begin(), sorted.end());
    if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end())
      return "request " + std::to_string(id) + " holds a block twice";
    for (auto b : t.blocks) ++holders[b];
  }
  for (std::uint32_t b = 0; b < holders.size(); ++b) {
    if (holders[b] != pool_.ref(b))
      return "block " + std::to_string(b) + " has reference " + std::to_string(pool_.ref(b)) + " but " +
             std::to_string(holders[b]) + " holders";
    // Two holders can only share content both computed: a block outside the cache is private.
    if (holders[b] > 1 && !pool_.is_cached(b)) return "uncached block " + std::to_string(b) + " is shared";
  }
  return {};
}

}  // namespace troupe
