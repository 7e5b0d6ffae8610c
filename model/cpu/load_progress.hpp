#pragma once
// Weight-loading progress. A reporter thread writes a line once a period (a second by default) while a
// load runs -- percent, GB so far and the rate -- so one large tensor converting for seconds cannot
// silence it; finish() stops it and gives the final GB/s. Loads shorter than a period print only that.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace troupe::cpu {

// "loading weights:  42% (1.234 of 2.938 GB, 1.52 GB/s)"
std::string progress_line(std::size_t loaded, std::size_t total, double seconds);
// "loaded 2.938 GB of weights in 1.93 s (1.52 GB/s)"
std::string final_line(std::size_t loaded, double seconds);

class LoadProgress {
 public:
  using Sink = std::function<void(const std::string&)>;  // default: spdlog info
  explicit LoadProgress(std::size_t total_bytes, Sink sink = {},
                        std::chrono::milliseconds period = std::chrono::seconds(1));
  ~LoadProgress();
  LoadProgress(const LoadProgress&) = delete;
  LoadProgress& operator=(const LoadProgress&) = delete;

  void add(std::size_t bytes) { loaded_ += bytes; }
  std::size_t loaded() const { return loaded_; }
  std::string finish();  // stops the reporter; writes and returns the final line (once)

 private:
  void run();
  void stop();
  std::size_t total_;
  Sink sink_;
  std::chrono::milliseconds period_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::atomic<std::size_t> loaded_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool finished_ = false;
  std::thread reporter_;
};

}  // namespace troupe::cpu
