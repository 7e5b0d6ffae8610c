#include "model/cuda/decode_graphs.hpp"

#include "model/cuda/cuda_util.hpp"

#include <algorithm>
#include <stdexcept>

namespace troupe::cuda {

DecodeGraphs::DecodeGraphs(std::vector<int> batch_sizes, std::vector<int> context_buckets)
    : sizes_(std::move(batch_sizes)), buckets_(std::move(context_buckets)) {
  std::sort(sizes_.begin(), sizes_.end());
  std::sort(buckets_.begin(), buckets_.end());
}

DecodeGraphs::~DecodeGraphs() {
  for (cudaGraphExec_t e : execs_) cudaGraphExecDestroy(e);
}

cudaGraphExec_t DecodeGraphs::capture_one(cudaStream_t s, const Record& record, int batch, int context) {
  cudaGraph_t graph = nullptr;
  // Thread-local: another thread's unrelated CUDA calls neither break this capture nor get refused by it.
  TROUPE_CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
  try {
    record(batch, context);
  } catch (...) {
    cudaStreamEndCapture(s, &graph);
    if (graph) cudaGraphDestroy(graph);
    cudaGetLastError();
    throw;
  }
  TROUPE_CUDA_CHECK(cudaStreamEndCapture(s, &graph));
  cudaGraphExec_t exec = nullptr;
  const cudaError_t e = cudaGraphInstantiateWithFlags(&exec, graph, 0);
  cudaGraphDestroy(graph);
  TROUPE_CUDA_CHECK(e);
  execs_.push_back(exec);
  TROUPE_CUDA_CHECK(cudaGraphUpload(exec, s));  // the first replay then costs what the others do
  return exec;
}

void DecodeGraphs::capture(cudaStream_t s, const Prepare& prepare, const Record& record, const PlanKey& plan_key) {
  for (auto b = sizes_.rbegin(); b != sizes_.rend(); ++b) {
    prepare(*b);
    record(*b, buckets_.back());
    TROUPE_CUDA_CHECK(cudaStreamSynchronize(s));
    TROUPE_CUDA_CHECK(cudaGetLastError());
    std::map<std::int64_t, Hit> by_key;
    for (auto c = buckets_.rbegin(); c != buckets_.rend(); ++c) {
      const std::int64_t key = plan_key(*b, *c);
      auto it = by_key.find(key);
      if (it == by_key.end()) it = by_key.emplace(key, Hit{capture_one(s, record, *b, *c), *b, *c}).first;
      table_[{*b, *c}] = it->second;
    }
  }
}

DecodeGraphs::Hit DecodeGraphs::find(int num_seqs, int max_seq_len) const {
  const int b = smallest_at_least(sizes_, num_seqs), c = smallest_at_least(buckets_, max_seq_len);
  if (b == 0 || c == 0) return {};
  auto it = table_.find({b, c});
  return it == table_.end() ? Hit{} : it->second;
}

}  // namespace troupe::cuda
