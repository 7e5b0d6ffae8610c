#include "model/cpu/collective.hpp"

#include <algorithm>
#include <map>
#include <stdexcept>
#include <string>

namespace troupe::cpu {

std::shared_ptr<CpuGroup> CpuGroup::join(std::uint64_t id, std::uint32_t world) {
  static std::mutex mu;
  static std::map<std::uint64_t, std::weak_ptr<CpuGroup>> groups;  // weak: a group ends with its ranks
  std::lock_guard lk(mu);
  if (auto g = groups[id].lock()) {
    if (g->world() != world) throw std::invalid_argument("cpu tensor-parallel group: ranks disagree on its size");
    return g;
  }
  auto g = std::make_shared<CpuGroup>(world);
  groups[id] = g;
  return g;
}

CpuGroup::CpuGroup(std::uint32_t world, std::chrono::seconds timeout)
    : world_(world), timeout_(timeout), bufs_(world), sizes_(world) {}

void CpuGroup::barrier(std::unique_lock<std::mutex>& lk, std::uint32_t& arrived, std::uint64_t& generation) {
  const std::uint64_t mine = generation;
  if (++arrived == world_) {
    arrived = 0;
    ++generation;
    cv_.notify_all();
    return;
  }
  if (!cv_.wait_for(lk, timeout_, [&] { return generation != mine; }))
    throw std::runtime_error("cpu tensor-parallel all-reduce: not every rank arrived within " +
                             std::to_string(timeout_.count()) + " s (the cpu backend needs all ranks in one process)");
}

void CpuGroup::all_reduce_sum(std::uint32_t rank, float* data, std::size_t n) {
  std::unique_lock lk(mu_);
  bufs_[rank] = data;
  sizes_[rank] = n;
  barrier(lk, arrived_in_, gen_in_);  // every rank's partial result is in place
  for (auto s : sizes_)
    if (s != n) throw std::logic_error("cpu tensor-parallel all-reduce: ranks reduce different sizes");
  lk.unlock();
  std::vector<float> sum(data, data + n);
  if (rank != 0) std::copy_n(bufs_[0], n, sum.begin());
  for (std::uint32_t r = 1; r < world_; ++r) {
    const float* b = bufs_[r];
    for (std::size_t i = 0; i < n; ++i) sum[i] += b[i];
  }
  lk.lock();
  barrier(lk, arrived_out_, gen_out_);  // nobody overwrites its partial result before all have read it
  lk.unlock();
  std::copy(sum.begin(), sum.end(), data);
}

}  // namespace troupe::cpu
