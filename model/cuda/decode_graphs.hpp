#pragma once
// The captured CUDA graphs of decode steps (issue 7): one per (padded batch size, context bucket) of
// decode_graph_plan.hpp, captured at start-up and replayed by CudaModel::forward for decode-only steps.
//
// What a graph bakes in: every kernel's arguments (device pointers, grid sizes, the split-KV plans derived
// from the bucket's length). So everything it touches lives at a fixed address for the model's lifetime:
// the step inputs (CudaModel's step buffer, rewritten by one H2D copy before each replay), the activation
// arena, the kernels' workspaces (reserved at start-up, never re-allocated), the weights and the KV cache.
#include "model/cuda/decode_graph_plan.hpp"

#include <cuda_runtime.h>

#include <cstdint>
#include <functional>
#include <map>
#include <utility>
#include <vector>

namespace troupe::cuda {

class DecodeGraphs {
 public:
  // prepare(batch): puts all-padding inputs of `batch` rows in place (for the eager warm-up run).
  // record(batch, context): issues one padded decode step on the stream (eager, or into the capture).
  // plan_key(batch, context): equal keys for one batch size mean identical launches: one graph serves them.
  using Prepare = std::function<void(int batch)>;
  using Record = std::function<void(int batch, int context)>;
  using PlanKey = std::function<std::int64_t(int batch, int context)>;

  DecodeGraphs(std::vector<int> batch_sizes, std::vector<int> context_buckets);
  ~DecodeGraphs();
  DecodeGraphs(const DecodeGraphs&) = delete;
  DecodeGraphs& operator=(const DecodeGraphs&) = delete;

  // Per batch size (largest first): one eager warm-up (lazy attribute set-up, GEMM plans), then a capture
  // per distinct plan key over the buckets (largest first, so a shared graph is planned for the longest
  // context it serves). Throws std::runtime_error on a CUDA error; the stream's capture is ended first.
  void capture(cudaStream_t s, const Prepare& prepare, const Record& record, const PlanKey& plan_key);

  struct Hit {
    cudaGraphExec_t exec = nullptr;
    int batch = 0, context = 0;  // the padded batch size; the context the graph was planned for
  };
  // The graph of a decode step of `num_seqs` one-token sequences whose longest is `max_seq_len`, or none.
  Hit find(int num_seqs, int max_seq_len) const;
  int num_graphs() const { return int(execs_.size()); }

 private:
  cudaGraphExec_t capture_one(cudaStream_t s, const Record& record, int batch, int context);

  std::vector<int> sizes_, buckets_;
  std::vector<cudaGraphExec_t> execs_;  // owned
  std::map<std::pair<int, int>, Hit> table_;
};

}  // namespace troupe::cuda
