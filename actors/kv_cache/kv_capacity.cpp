#include "actors/kv_cache/kv_capacity.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace troupe {

std::uint64_t kv_bytes_per_block(std::uint32_t block_size, std::uint32_t num_layers,
                                 std::uint64_t values_per_token_per_layer, std::uint32_t bytes_per_value) {
  return std::uint64_t(block_size) * num_layers * values_per_token_per_layer * bytes_per_value;
}

std::uint32_t kv_blocks_from_memory(const DeviceMemory& mem, double util, std::uint64_t bytes_per_block) {
  if (bytes_per_block == 0) throw std::invalid_argument("KV bytes per block must be positive");
  auto budget = static_cast<std::uint64_t>(std::floor(double(mem.total_bytes) * util));
  auto gib = [](std::uint64_t b) { return std::to_string(double(b) / double(1ull << 30)).substr(0, 6) + " GiB"; };
  if (budget <= mem.peak_used_bytes)
    throw std::runtime_error("no memory left for the KV cache: gpu-memory-utilization allows " + gib(budget) +
                             ", weights and activations take " + gib(mem.peak_used_bytes) +
                             " (raise gpu-memory-utilization or use more tensor parallelism)");
  std::uint64_t n = (budget - mem.peak_used_bytes) / bytes_per_block;
  if (n == 0) throw std::runtime_error("the memory left for the KV cache holds less than one block");
  return static_cast<std::uint32_t>(std::min<std::uint64_t>(n, 0xffffffffu));
}

std::uint32_t default_kv_blocks(std::uint32_t max_model_len, std::uint32_t block_size, std::uint32_t max_num_seqs) {
  std::uint64_t per_seq = (std::uint64_t(max_model_len) + block_size - 1) / block_size;
  return static_cast<std::uint32_t>(std::min<std::uint64_t>(per_seq * max_num_seqs, 1u << 22));
}

std::uint32_t resolve_kv_blocks(const std::string& backend, std::optional<int> override_blocks,
                                std::uint32_t max_model_len, std::uint32_t block_size, std::uint32_t max_num_seqs,
                                const std::optional<DeviceMemory>& mem, double util, std::uint64_t bytes_per_block) {
  if (override_blocks) return static_cast<std::uint32_t>(*override_blocks);
  if (backend == "cuda") {
    if (!mem) throw std::invalid_argument("cuda needs the device's measured memory to size the KV cache");
    return kv_blocks_from_memory(*mem, util, bytes_per_block);
  }
  return default_kv_blocks(max_model_len, block_size, max_num_seqs);
}

}  // namespace troupe
