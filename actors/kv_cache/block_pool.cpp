#include "actors/kv_cache/block_pool.hpp"

#include <algorithm>
#include <stdexcept>

namespace troupe {

BlockPool::BlockPool(std::uint32_t num_blocks)
  : ref_(num_blocks, 0), hash_(num_blocks, 0), has_hash_(num_blocks, false), prev_(num_blocks + 1),
    next_(num_blocks + 1), sentinel_(num_blocks) {
  prev_[sentinel_] = next_[sentinel_] = sentinel_;
  // Lowest ids first, so a fresh pool fills memory front to back.
  for (std::uint32_t i = 0; i < num_blocks; ++i) link_before(i, sentinel_);
}

void BlockPool::unlink(std::uint32_t id) {
  next_[prev_[id]] = next_[id];
  prev_[next_[id]] = prev_[id];
  --num_free_;
}

void BlockPool::link_before(std::uint32_t id, std::uint32_t pos) {
  prev_[id] = prev_[pos];
  next_[id] = pos;
  next_[prev_[pos]] = id;
  prev_[pos] = id;
  ++num_free_;
}

void BlockPool::evict(std::uint32_t id) {
  if (!has_hash_[id]) return;
  auto it = cached_.find(hash_[id]);
  if (it != cached_.end() && it->second == id) cached_.erase(it);
  has_hash_[id] = false;
}

void BlockPool::forget_all() {
  cached_.clear();
  std::fill(has_hash_.begin(), has_hash_.end(), false);
}

bool BlockPool::allocate(std::uint32_t n, std::vector<std::uint32_t>& out) {
  if (n > num_free_) return false;
  for (std::uint32_t i = 0; i < n; ++i) {
    std::uint32_t id = next_[sentinel_];
    unlink(id);
    evict(id);
    ref_[id] = 1;
    out.push_back(id);
  }
  return true;
}

void BlockPool::touch(std::uint32_t id) {
  if (ref_[id]++ == 0) unlink(id);
}

void BlockPool::release(std::uint32_t id) {
  if (id >= ref_.size() || ref_[id] == 0) throw std::logic_error("block " + std::to_string(id) + " freed twice");
  if (--ref_[id] > 0) return;
  // Cached content may serve a later request: keep it longest (MRU end). Plain blocks are reused first.
  link_before(id, has_hash_[id] ? sentinel_ : next_[sentinel_]);
}

void BlockPool::cache(std::uint32_t id, std::uint64_t hash) {
  if (has_hash_[id]) return;
  if (!cached_.emplace(hash, id).second) return;  // same content already cached in another block
  hash_[id] = hash;
  has_hash_[id] = true;
}

std::optional<std::uint32_t> BlockPool::lookup(std::uint64_t hash) const {
  auto it = cached_.find(hash);
  if (it == cached_.end()) return std::nullopt;
  return it->second;
}

std::string BlockPool::check() const {
  std::vector<bool> listed(ref_.size(), false);
  std::uint32_t n = 0;
  for (std::uint32_t id = next_[sentinel_]; id != sentinel_; id = next_[id]) {
    if (id >= ref_.size() || listed[id]) return "free list is corrupt at block " + std::to_string(id);
    if (prev_[next_[id]] != id) return "free list links disagree at block " + std::to_string(id);
    listed[id] = true;
    ++n;
  }
  if (n != num_free_) return "free list holds " + std::to_string(n) + " blocks, count says " + std::to_string(num_free_);
  for (std::uint32_t id = 0; id < ref_.size(); ++id)
    if (listed[id] != (ref_[id] == 0))
      return "block " + std::to_string(id) + " has reference " + std::to_string(ref_[id]) +
             (listed[id] ? " but is on the free list" : " but is not on the free list");
  for (auto& [h, id] : cached_)
    if (!has_hash_[id] || hash_[id] != h) return "cache map points at block " + std::to_string(id) + " of another hash";
  std::uint32_t hashed = 0;
  for (std::uint32_t id = 0; id < ref_.size(); ++id) hashed += has_hash_[id];
  if (hashed != cached_.size()) return "blocks with a hash and cache map sizes differ";
  return {};
}

}  // namespace troupe
