#pragma once
// How many KV blocks a worker gets. vLLM's rules: num-gpu-blocks-override wins anywhere; on cuda the cache
// takes what gpu-memory-utilization leaves after the weights and the activation peak; cpu and sim hold no
// real KV memory, so they get room for max-num-seqs sequences at max-model-len (capped).
#include <cstdint>
#include <optional>
#include <string>

namespace troupe {

struct DeviceMemory {
  std::uint64_t total_bytes = 0;       // the device's memory
  std::uint64_t peak_used_bytes = 0;   // weights + activation peak of a profiling step + other allocations
};

// Bytes one block takes on one worker, all layers: DeepSeek's MLA caches (kv_lora_rank + qk_rope_head_dim)
// values per token and layer; a GQA model caches 2 * num_kv_heads * head_dim (per worker: its share).
std::uint64_t kv_bytes_per_block(std::uint32_t block_size, std::uint32_t num_layers,
                                 std::uint64_t values_per_token_per_layer, std::uint32_t bytes_per_value);

// Blocks that fit in total * utilization - peak_used. Throws std::runtime_error (with the numbers) when
// nothing is left for the cache.
std::uint32_t kv_blocks_from_memory(const DeviceMemory& mem, double gpu_memory_utilization,
                                    std::uint64_t bytes_per_block);

// The default when no device memory is measured (cpu, sim).
std::uint32_t default_kv_blocks(std::uint32_t max_model_len, std::uint32_t block_size, std::uint32_t max_num_seqs);

// The override if set, else the backend's rule (mem is needed for cuda only).
std::uint32_t resolve_kv_blocks(const std::string& backend, std::optional<int> num_gpu_blocks_override,
                                std::uint32_t max_model_len, std::uint32_t block_size, std::uint32_t max_num_seqs,
                                const std::optional<DeviceMemory>& mem = std::nullopt,
                                double gpu_memory_utilization = 0.9, std::uint64_t bytes_per_block = 0);

}  // namespace troupe
