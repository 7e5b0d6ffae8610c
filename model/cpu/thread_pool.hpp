#pragma once
// The cpu models' worker threads (Llama/Qwen2 and DeepSeek share it). Callers make every output element the
// work of exactly one index with a fixed summation order, so results never depend on the thread count or on
// which thread takes which chunk.
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace troupe::cpu {

// A fixed set of workers; parallel_for blocks until the whole range is done. Not reentrant.
class ThreadPool {
 public:
  using Fn = std::function<void(std::size_t begin, std::size_t end)>;
  explicit ThreadPool(unsigned threads = 0);  // 0: one per hardware thread
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;
  unsigned size() const { return static_cast<unsigned>(workers_.size()) + 1; }
  void parallel_for(std::size_t n, const Fn& fn);

 private:
  void worker_loop();
  void run_chunks();
  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  const Fn* fn_ = nullptr;
  std::size_t n_ = 0, chunks_ = 0, pending_ = 0;
  std::atomic<std::size_t> next_{0};
  std::uint64_t generation_ = 0;
  bool stop_ = false;
};

}  // namespace troupe::cpu
