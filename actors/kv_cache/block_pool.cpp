#include "actors/kv_cache/block_pool.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace troupe {

BlockPool::BlockPool(std::uint32_t num_blocks) : total_(num_blocks), in_use_(num_blocks, false) {
  free_.reserve(num_blocks);
  for (std::uint32_t i = num_blocks; i > 0; --i) free_.push_back(i - 1);
}

std::optional<std::vector<std::uint32_t>> BlockPool::allocate(std::uint32_t n) {
  if (n > free_.size()) return std::nullopt;
  std::vector<std::uint32_t> out(free_.end() - n, free_.end());
  free_.resize(free_.size() - n);
  // The stack's top is its back; hand out in ascending order for readable tables.
  std::reverse(out.begin(), out.end());
  for (auto id : out) in_use_[id] = true;
  return out;
}

void BlockPool::release(const std::vector<std::uint32_t>& ids) {
  for (auto it = ids.rbegin(); it != ids.rend(); ++it) {
    auto id = *it;
    if (id >= total_ || !in_use_[id]) throw std::logic_error("block " + std::to_string(id) + " freed twice");
    in_use_[id] = false;
    free_.push_back(id);
  }
}

KvBook::KvBook(std::uint32_t num_blocks, std::uint32_t block_size) : pool_(num_blocks), block_size_(block_size) {
  if (block_size == 0) throw std::invalid_argument("block size must be positive");
}

KvAllocResult KvBook::allocate(std::uint64_t id, std::uint32_t num_tokens) {
  auto& table = tables_[id];
  std::uint32_t want = blocks_for(num_tokens);
  KvAllocResult r;
  if (want <= table.size()) {
    r.ok = true;
    return r;
  }
  auto got = pool_.allocate(want - static_cast<std::uint32_t>(table.size()));
  if (!got) {
    if (table.empty()) tables_.erase(id);
    return r;
  }
  table.insert(table.end(), got->begin(), got->end());
  r.ok = true;
  r.new_blocks = std::move(*got);
  return r;
}

void KvBook::free(std::uint64_t id) {
  auto it = tables_.find(id);
  if (it == tables_.end()) return;
  pool_.release(it->second);
  tables_.erase(it);
}

std::uint32_t KvBook::num_owned() const {
  std::uint32_t n = 0;
  for (auto& [id, t] : tables_) n += static_cast<std::uint32_t>(t.size());
  return n;
}

const std::vector<std::uint32_t>* KvBook::table(std::uint64_t id) const {
  auto it = tables_.find(id);
  return it == tables_.end() ? nullptr : &it->second;
}

}  // namespace troupe
