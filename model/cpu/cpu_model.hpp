#pragma once
// What the cpu backend runs: a model that computes a mixed batch of prefill chunks and decode tokens of
// different sequences over a paged KV cache, and returns the logits the backend samples from. Llama and
// Qwen2 (llama.hpp) and DeepSeek-V2/V3 (deepseek.hpp, wrapped in cpu_model.cpp) implement it.
#include "model/config/model_config.hpp"
#include "model/cpu/collective.hpp"

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace troupe::cpu {

struct Chunk {
  std::span<const std::int32_t> tokens;        // this step's tokens of one sequence
  std::uint32_t start_pos = 0;                 // position of tokens[0]; positions below are in the cache
  std::span<const std::uint32_t> block_table;  // the sequence's KV blocks, covering start_pos + tokens.size()
  bool wants_logits = true;                    // false for a prefill chunk that does not end the prompt
  bool all_logits = false;                     // every token's logits (prompt_logprobs), not only the last
};

class CpuModel {
 public:
  virtual ~CpuModel() = default;
  virtual const ModelConfig& config() const = 0;
  // Computes every chunk's tokens, writing their KV at their positions, and returns vocab_size logits
  // rows in chunk order: one per token of a chunk with all_logits, else the last token's for a chunk with
  // wants_logits (none for an empty chunk). Results do not depend on the thread count. Throws std::invalid_argument for a bad token id or a block table that is too short.
  virtual std::vector<std::vector<float>> forward(std::span<const Chunk> chunks) = 0;
};

struct CpuModelOptions {
  std::string model_dir;            // holds config.json (and the safetensors unless dummy)
  bool dummy_weights = false;       // load-format dummy: weights from `seed`, no checkpoint files read
  std::uint64_t seed = 0;
  std::uint32_t block_size = 16, num_blocks = 0;
  unsigned threads = 0;             // 0: one per hardware thread
  TensorParallel tp;                // each rank loads only its shard (heads, MLP columns, experts)
};

// Reads config.json and loads the weights (spdlog progress, GB/s). Throws ModelConfigError,
// CheckpointError, or std::runtime_error for an architecture without a cpu implementation.
std::unique_ptr<CpuModel> load_cpu_model(const CpuModelOptions& opt);

}  // namespace troupe::cpu
