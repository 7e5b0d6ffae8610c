#include "model/cuda/decode_graph_plan.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace troupe::cuda {

std::vector<int> decode_graph_batch_sizes(int max_seqs) {
  const int cap = std::min(max_seqs, 256);
  std::vector<int> out;
  for (int b : {1, 2, 4})
    if (b <= cap) out.push_back(b);
  for (int b = 8; b <= cap; b += 8) out.push_back(b);
  if (cap >= 1 && (out.empty() || out.back() != cap)) out.push_back(cap);
  return out;
}

std::vector<int> decode_graph_context_buckets(int max_model_len) {
  std::vector<int> out;
  for (int c = 256; c < max_model_len; c *= 2) out.push_back(c);
  if (max_model_len >= 1) out.push_back(max_model_len);
  return out;
}

int smallest_at_least(const std::vector<int>& sorted, int v) {
  auto it = std::lower_bound(sorted.begin(), sorted.end(), v);
  return it == sorted.end() ? 0 : *it;
}

StepLayout decode_graph_layout(int batch, int max_blocks) {
  StepLayout L;
  L.num_tokens = L.num_seqs = batch;
  L.max_blocks = max_blocks;
  L.tokens = 0;
  L.token_seq = batch;
  L.positions = 2 * batch;
  L.slot_mapping = 3 * batch;
  L.seq_lens = 4 * batch;
  L.logits_rows = 5 * batch;
  L.block_tables = 6 * batch;
  L.total = L.block_tables + batch * max_blocks;
  return L;
}

StepLayout pad_decode_step(std::span<const std::int32_t> packed, const StepLayout& L, int batch, int max_blocks,
                           std::vector<std::int32_t>& out) {
  const int n = L.num_tokens;
  if (L.num_seqs != n || n > batch || (n > 0 && L.max_blocks != max_blocks) || packed.size() < std::size_t(L.total))
    throw std::invalid_argument("pad_decode_step: step of " + std::to_string(n) + " tokens in " +
                                std::to_string(L.num_seqs) + " sequences does not fit a decode graph of " +
                                std::to_string(batch));
  StepLayout P = decode_graph_layout(batch, max_blocks);
  P.num_logits = L.num_logits;
  P.max_seq_len = L.max_seq_len;
  out.assign(std::size_t(P.total), 0);
  auto* o = out.data();
  const auto* in = packed.data();
  std::copy_n(in + L.tokens, n, o + P.tokens);
  std::copy_n(in + L.positions, n, o + P.positions);
  std::copy_n(in + L.slot_mapping, n, o + P.slot_mapping);
  std::copy_n(in + L.seq_lens, n, o + P.seq_lens);
  std::copy_n(in + L.logits_rows, L.num_logits, o + P.logits_rows);
  std::copy_n(in + L.block_tables, std::size_t(n) * max_blocks, o + P.block_tables);
  for (int i = 0; i < batch; ++i) o[P.token_seq + i] = i;  // one token per sequence, real rows included
  for (int i = n; i < batch; ++i) {
    o[P.slot_mapping + i] = -1;
    o[P.seq_lens + i] = 1;
  }
  return P;
}

}  // namespace troupe::cuda
