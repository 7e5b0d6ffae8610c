#include "tools/bench/runner.hpp"

#include <unistd.h>

#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <random>
#include <thread>

namespace troupe::bench {

std::vector<double> arrival_times(std::size_t n, double request_rate, double burstiness, std::uint64_t seed) {
  std::vector<double> t(n, 0.0);
  if (n == 0 || std::isinf(request_rate)) return t;
  std::mt19937_64 rng(seed);
  std::gamma_distribution<double> gamma(burstiness, 1.0 / (request_rate * burstiness));
  double acc = 0;
  for (auto& x : t) x = acc += std::isinf(burstiness) ? 1.0 / request_rate : gamma(rng);
  // vLLM rescales so the schedule spans exactly n/rate whatever the draws were (stable throughput).
  if (t.back() > 0) {
    double k = double(n) / request_rate / t.back();
    for (auto& x : t) x *= k;
  }
  return t;
}

namespace {

// tqdm-like "37%|#####     | 412/1100 [00:03<00:05, 120.50it/s]" on stderr, redrawn by its own thread
// when stderr is a terminal, printed once at the end otherwise.
class Progress {
 public:
  Progress(std::size_t total, bool enabled) : total_(total), enabled_(enabled), tty_(isatty(2)) {
    if (enabled_ && tty_) thread_ = std::thread([this] { loop(); });
  }
  ~Progress() {
    if (!enabled_) return;
    {
      std::lock_guard lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    draw();
    std::fputc('\n', stderr);
  }
  void tick() { done_.fetch_add(1, std::memory_order_relaxed); }

 private:
  void loop() {
    std::unique_lock lk(mu_);
    while (!cv_.wait_for(lk, std::chrono::milliseconds(100), [&] { return stop_; })) draw();
  }
  void draw() {
    std::size_t d = done_.load();
    double el = std::chrono::duration<double>(Clock::now() - t0_).count();
    double rate = el > 0 ? d / el : 0;
    int pct = total_ ? int(100.0 * d / total_) : 100;
    char bar[41];
    int fill = total_ ? int(40.0 * d / total_) : 40;
    for (int i = 0; i < 40; ++i) bar[i] = i < fill ? '#' : ' ';
    bar[40] = 0;
    double left = rate > 0 ? (total_ - d) / rate : 0;
    std::fprintf(stderr, "\r%3d%%|%s| %zu/%zu [%02d:%02d<%02d:%02d, %.2fit/s]", pct, bar, d, total_, int(el) / 60,
                 int(el) % 60, int(left) / 60, int(left) % 60, rate);
    std::fflush(stderr);
  }
  std::size_t total_;
  bool enabled_, tty_, stop_ = false;
  std::atomic<std::size_t> done_{0};
  Clock::time_point t0_ = Clock::now();
  std::mutex mu_;
  std::condition_variable cv_;
  std::thread thread_;
};

// In-flight accounting shared by the scheduling thread and the I/O threads.
struct Flight {
  std::mutex mu;
  std::condition_variable cv;
  std::size_t in_flight = 0, finished = 0;
};

}  // namespace

RunResult run_requests(HttpClient& client, const std::vector<PreparedRequest>& reqs, const RunOptions& o) {
  auto times = arrival_times(reqs.size(), o.request_rate, o.burstiness, o.seed);
  std::vector<std::unique_ptr<ResponseRecorder>> rec(reqs.size());
  Flight f;
  Progress bar(reqs.size(), o.progress);
  const auto t0 = Clock::now();
  std::size_t started = 0;
  for (std::size_t i = 0; i < reqs.size(); ++i) {
    auto arrival = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(times[i]));
    std::this_thread::sleep_until(arrival);
    if (o.stop_after_s > 0 && Clock::now() - t0 > std::chrono::duration<double>(o.stop_after_s)) break;
    {
      std::unique_lock lk(f.mu);
      if (o.max_concurrency) f.cv.wait(lk, [&] { return f.in_flight < std::size_t(*o.max_concurrency); });
      ++f.in_flight;
    }
    auto start = Clock::now();
    rec[i] = std::make_unique<ResponseRecorder>(o.chat, start, reqs[i].prompt_len);
    rec[i]->output().queue_time = std::chrono::duration<double>(start - std::max(arrival, t0)).count();
    ResponseRecorder* r = rec[i].get();
    client.request("POST", o.target, reqs[i].body,
                   {[r](std::string_view b, Clock::time_point at) { r->on_bytes(b, at); },
                    [r, &f, &bar](int status, std::string body, std::string error) {
                      r->finish(status, body, error);
                      bar.tick();
                      std::lock_guard lk(f.mu);
                      --f.in_flight;
                      ++f.finished;
                      f.cv.notify_all();
                    }});
    ++started;
  }
  {
    std::unique_lock lk(f.mu);
    f.cv.wait(lk, [&] { return f.finished == started; });
  }
  RunResult res;
  res.duration_s = std::chrono::duration<double>(Clock::now() - t0).count();
  for (std::size_t i = 0; i < started; ++i) res.outputs.push_back(std::move(rec[i]->output()));
  return res;
}

RequestOutput run_one(HttpClient& client, const std::string& target, bool chat, const PreparedRequest& r) {
  RunOptions o;
  o.target = target;
  o.chat = chat;
  o.progress = false;
  auto res = run_requests(client, {r}, o);
  return res.outputs.at(0);
}

}  // namespace troupe::bench
