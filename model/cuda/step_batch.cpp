#include "model/cuda/step_batch.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace troupe::cuda {
namespace {

void validate(const StepChunk& c, std::size_t i, const StepLimits& lim) {
  const std::string where = "step chunk " + std::to_string(i) + ": ";
  for (auto t : c.tokens)
    if (t < 0 || std::uint32_t(t) >= lim.vocab)
      throw std::invalid_argument(where + "token id " + std::to_string(t) + " is outside the vocabulary of " +
                                  std::to_string(lim.vocab));
  const std::size_t end = std::size_t(c.start_pos) + c.tokens.size();
  const std::size_t need = (end + lim.block_size - 1) / lim.block_size;
  if (c.block_table.size() < need)
    throw std::invalid_argument(where + "block table has " + std::to_string(c.block_table.size()) +
                                " blocks, positions up to " + std::to_string(end) + " need " + std::to_string(need));
  if (need > lim.max_blocks_per_seq)
    throw std::invalid_argument(where + std::to_string(end) + " positions exceed max-model-len");
  for (std::size_t b = 0; b < need; ++b)
    if (c.block_table[b] >= lim.num_blocks)
      throw std::invalid_argument(where + "block id " + std::to_string(c.block_table[b]) + " out of range (" +
                                  std::to_string(lim.num_blocks) + " blocks)");
}

}  // namespace

StepLayout pack_step(std::span<const StepChunk> chunks, const StepLimits& lim, std::vector<std::int32_t>& out) {
  StepLayout L;
  for (std::size_t i = 0; i < chunks.size(); ++i) {
    const StepChunk& c = chunks[i];
    if (c.tokens.empty()) continue;
    validate(c, i, lim);
    L.num_tokens += int(c.tokens.size());
    L.num_seqs += 1;
    L.num_logits += c.wants_logits ? 1 : 0;
    L.max_seq_len = std::max(L.max_seq_len, int(c.start_pos + c.tokens.size()));
  }
  if (std::uint32_t(L.num_tokens) > lim.max_tokens)
    throw std::invalid_argument("step of " + std::to_string(L.num_tokens) + " tokens exceeds max-num-batched-tokens " +
                                std::to_string(lim.max_tokens));
  if (std::uint32_t(L.num_seqs) > lim.max_seqs)
    throw std::invalid_argument("step of " + std::to_string(L.num_seqs) + " sequences exceeds max-num-seqs " +
                                std::to_string(lim.max_seqs));
  L.max_blocks = int(lim.max_blocks_per_seq);
  const int T = L.num_tokens, S = L.num_seqs;
  L.tokens = 0;
  L.token_seq = T;
  L.positions = 2 * T;
  L.slot_mapping = 3 * T;
  L.seq_lens = 4 * T;
  L.logits_rows = 4 * T + S;
  L.block_tables = 4 * T + S + L.num_logits;
  L.total = L.block_tables + S * L.max_blocks;
  out.assign(std::size_t(L.total), 0);
  int t = 0, s = 0, r = 0;
  for (const StepChunk& c : chunks) {
    if (c.tokens.empty()) continue;
    for (std::size_t i = 0; i < c.tokens.size(); ++i, ++t) {
      const std::uint32_t pos = c.start_pos + std::uint32_t(i);
      out[std::size_t(L.tokens + t)] = c.tokens[i];
      out[std::size_t(L.token_seq + t)] = s;
      out[std::size_t(L.positions + t)] = std::int32_t(pos);
      out[std::size_t(L.slot_mapping + t)] =
          std::int32_t(c.block_table[pos / lim.block_size] * lim.block_size + pos % lim.block_size);
    }
    out[std::size_t(L.seq_lens + s)] = std::int32_t(c.start_pos + c.tokens.size());
    if (c.wants_logits) out[std::size_t(L.logits_rows + r++)] = t - 1;
    const std::size_t need = (c.start_pos + c.tokens.size() + lim.block_size - 1) / lim.block_size;
    for (std::size_t b = 0; b < need; ++b)
      out[std::size_t(L.block_tables + s * L.max_blocks) + b] = std::int32_t(c.block_table[b]);
    ++s;
  }
  return L;
}

}  // namespace troupe::cuda
