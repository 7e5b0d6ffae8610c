#pragma once
// The prefix cache's key for a full block: hash(parent block's hash, the block's token ids), so equal keys
// mean equal prefixes, not just equal blocks (vLLM's hash chain). 64 bits, mixed per token; the kv manager
// treats keys as opaque. Collisions are possible in principle (about n^2 / 2^65 for n cached blocks:
// 1e-7 at 2 million blocks) -- a salted 128-bit key is the upgrade if that ever matters.
#include <cstdint>
#include <span>
#include <vector>

namespace troupe {

inline std::uint64_t mix64(std::uint64_t x) {  // splitmix64's finalizer
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

constexpr std::uint64_t kRootBlockHash = 0x6a09e667f3bcc908ull;  // the parent of a request's first block

inline std::uint64_t block_hash(std::uint64_t parent, std::span<const std::int32_t> tokens) {
  std::uint64_t h = mix64(parent ^ 0x9e3779b97f4a7c15ull);
  for (auto t : tokens) h = mix64(h ^ (std::uint64_t(std::uint32_t(t)) + 0x9e3779b97f4a7c15ull));
  return mix64(h ^ tokens.size());
}

// Extends `hashes` to cover every full block of `tokens`.
inline void extend_block_hashes(std::vector<std::uint64_t>& hashes, const std::vector<std::int32_t>& tokens,
                                std::uint32_t block_size) {
  std::size_t full = tokens.size() / block_size;
  for (std::size_t i = hashes.size(); i < full; ++i) {
    std::uint64_t parent = i == 0 ? kRootBlockHash : hashes[i - 1];
    hashes.push_back(block_hash(parent, std::span(tokens.data() + i * block_size, block_size)));
  }
}

}  // namespace troupe
