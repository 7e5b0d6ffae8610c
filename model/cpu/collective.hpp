#pragma once
// Tensor parallelism on the cpu backend. The ranks of a group are gpu_worker threads of one process, so
// the all-reduce is a rendezvous in memory. Every rank sums the partial results in rank order 0..N-1:
// the ranks get bitwise equal activations and so sample the same tokens.
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

namespace troupe::cpu {

class CpuGroup {
 public:
  // The group `id` of `world` ranks: every rank that joins the same id shares one object.
  static std::shared_ptr<CpuGroup> join(std::uint64_t id, std::uint32_t world);

  explicit CpuGroup(std::uint32_t world, std::chrono::seconds timeout = std::chrono::seconds(300));
  std::uint32_t world() const { return world_; }
  // Replaces data[0..n) on every rank with the sum over the ranks. Blocks until all ranks have called it
  // (same n); throws std::runtime_error when one does not come within the timeout (a rank that died, or
  // ranks in different processes: the cpu backend cannot reduce across nodes).
  void all_reduce_sum(std::uint32_t rank, float* data, std::size_t n);

 private:
  void barrier(std::unique_lock<std::mutex>& lk, std::uint32_t& arrived, std::uint64_t& generation);

  std::uint32_t world_;
  std::chrono::seconds timeout_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<const float*> bufs_;
  std::vector<std::size_t> sizes_;
  std::uint32_t arrived_in_ = 0, arrived_out_ = 0;
  std::uint64_t gen_in_ = 0, gen_out_ = 0;
};

// A model's share of a tensor-parallel group: rank `rank` of `group->world()`; no group = world 1.
struct TensorParallel {
  std::uint32_t rank = 0;
  std::shared_ptr<CpuGroup> group;
  std::uint32_t world() const { return group ? group->world() : 1; }
  void all_reduce(float* data, std::size_t n) const {
    if (group && group->world() > 1) group->all_reduce_sum(rank, data, n);
  }
};

}  // namespace troupe::cpu
