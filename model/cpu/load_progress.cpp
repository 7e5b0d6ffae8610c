#include "model/cpu/load_progress.hpp"

#include <spdlog/spdlog.h>

namespace troupe::cpu {
namespace {
double gb(std::size_t bytes) { return double(bytes) / 1e9; }
double rate(std::size_t bytes, double s) { return s > 0 ? gb(bytes) / s : 0.0; }
}  // namespace

std::string progress_line(std::size_t loaded, std::size_t total, double seconds) {
  double pct = total ? 100.0 * double(loaded) / double(total) : 0.0;
  return fmt::format("loading weights: {:3.0f}% ({:.3f} of {:.3f} GB, {:.2f} GB/s)", pct, gb(loaded), gb(total),
                     rate(loaded, seconds));
}

std::string final_line(std::size_t loaded, double seconds) {
  return fmt::format("loaded {:.3f} GB of weights in {:.2f} s ({:.2f} GB/s)", gb(loaded), seconds, rate(loaded, seconds));
}

LoadProgress::LoadProgress(std::size_t total_bytes, Sink sink, std::chrono::milliseconds period)
    : total_(total_bytes), sink_(std::move(sink)), period_(period) {
  if (!sink_) sink_ = [](const std::string& line) { spdlog::info("{}", line); };
  reporter_ = std::thread([this] { run(); });
}

LoadProgress::~LoadProgress() { stop(); }

void LoadProgress::run() {
  std::unique_lock lk(mu_);
  while (!cv_.wait_for(lk, period_, [this] { return stop_; })) {
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    sink_(progress_line(loaded_, total_, s));
  }
}

void LoadProgress::stop() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (reporter_.joinable()) reporter_.join();
}

std::string LoadProgress::finish() {
  stop();
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  std::string line = final_line(loaded_, s);
  if (!finished_) sink_(line);
  finished_ = true;
  return line;
}

}  // namespace troupe::cpu
