#pragma once
// The paged KV cache's bookkeeping, without any actor: a pool of fixed-size blocks and, per request,
// the table of blocks that hold its tokens.
//
//   request 7: tokens 0..15 -> block 3, 16..31 -> block 9, 32..40 -> block 4   (block-size 16)
//   table[7] = [3, 9, 4]; a request with n tokens owns ceil(n / block_size) blocks.
//
// Block ids index the workers' KV memory, so every worker of a group sees the same ids.
#include <cstdint>
#include <optional>
#include <unordered_map>
#include <vector>

namespace troupe {

class BlockPool {
 public:
  explicit BlockPool(std::uint32_t num_blocks);
  // n blocks or nothing; lowest ids first so a fresh pool fills memory front to back.
  std::optional<std::vector<std::uint32_t>> allocate(std::uint32_t n);
  void release(const std::vector<std::uint32_t>& ids);  // throws std::logic_error on a double free
  std::uint32_t num_free() const { return static_cast<std::uint32_t>(free_.size()); }
  std::uint32_t num_total() const { return total_; }

 private:
  std::uint32_t total_;
  std::vector<std::uint32_t> free_;  // a stack; top = back
  std::vector<bool> in_use_;
};

struct KvAllocResult {
  bool ok = false;
  std::vector<std::uint32_t> new_blocks;
};

class KvBook {
 public:
  KvBook(std::uint32_t num_blocks, std::uint32_t block_size);

  // Grows request `id`'s table to hold `num_tokens` tokens; all or nothing.
  KvAllocResult allocate(std::uint64_t id, std::uint32_t num_tokens);
  void free(std::uint64_t id);  // unknown ids are ignored (a request that never got a block)

  std::uint32_t blocks_for(std::uint32_t num_tokens) const { return (num_tokens + block_size_ - 1) / block_size_; }
  std::uint32_t num_free() const { return pool_.num_free(); }
  std::uint32_t num_total() const { return pool_.num_total(); }
  std::uint32_t num_owned() const;  // sum of table sizes
  std::size_t num_tables() const { return tables_.size(); }
  const std::vector<std::uint32_t>* table(std::uint64_t id) const;

 private:
  BlockPool pool_;
  std::uint32_t block_size_;
  std::unordered_map<std::uint64_t, std::vector<std::uint32_t>> tables_;
};

}  // namespace troupe
