#pragma once
// Which decode steps replay a CUDA graph, and the fixed input layout a graph reads (pure logic, no CUDA).
//
// A graph is captured per (batch size, context bucket). Batch sizes are vLLM's defaults: 1, 2, 4, 8, then
// multiples of 8 up to min(max-num-seqs, 256) (and max-num-seqs itself when it is below 256 and off that
// list). A decode step of n sequences runs the graph of the smallest size >= n; rows n.. are padding.
// The context bucket fixes the attention kernels' host-side split planning (split-KV counts follow the
// longest sequence): buckets are 256, 512, 1024, ... doubling, the last one max-model-len; a step uses the
// smallest bucket >= its longest sequence, so its splits are planned for at most twice its length.
//
// The padded step's packed inputs, for B rows (n real, B - n padding) and M = max blocks per sequence:
//
//   | tokens [B] | token_seq [B] | positions [B] | slot_mapping [B] | seq_lens [B] | logits_rows [B] |
//   | block_tables [B x M] |
//
// Padding row i: token 0, its own sequence i, position 0, slot -1 (the cache writes skip it), seq_len 1,
// block table all block 0 (read, never written). logits_rows holds the real rows' entries first; only those
// are gathered for the lm_head, which runs outside the graph.
#include "model/cuda/step_batch.hpp"

#include <cstdint>
#include <span>
#include <vector>

namespace troupe::cuda {

std::vector<int> decode_graph_batch_sizes(int max_seqs);
std::vector<int> decode_graph_context_buckets(int max_model_len);

// The smallest entry of `sorted` >= v, or 0 when v is above them all.
int smallest_at_least(const std::vector<int>& sorted, int v);

// The layout above for B rows (offsets only; num_logits 0, max_seq_len 0).
StepLayout decode_graph_layout(int batch, int max_blocks);

// Pads a decode-only step packed by pack_step (every chunk one token: num_tokens == num_seqs <= batch)
// into `out` with decode_graph_layout(batch, L.max_blocks). The returned layout keeps L's num_logits and
// max_seq_len; num_tokens = num_seqs = batch. An empty packed step (L default, num_tokens 0) gives
// all-padding inputs (the capture's warm-up). Throws std::invalid_argument when L is not decode-only or
// does not fit.
StepLayout pad_decode_step(std::span<const std::int32_t> packed, const StepLayout& L, int batch, int max_blocks,
                           std::vector<std::int32_t>& out);

}  // namespace troupe::cuda
