// LtLanes (lt_lanes.hpp): helper threads, each with a Gemm and a stream, fed one batch of GEMM calls at a time.
#include "kernels/moe/lt_lanes.hpp"

#include "kernels/core/launch.hpp"
#include "kernels/gemm/gemm.hpp"

#include <algorithm>
#include <condition_variable>
#include <exception>
#include <map>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace troupe::kernels {

namespace {
void issue(Gemm& gemm, cudaStream_t s, const std::vector<Fp8TmCall>& calls) {
  for (const Fp8TmCall& c : calls) gemm.fp8_block_tm(c.a, c.a_scale_tm, c.w, c.w_scale, c.c, c.m, c.n, c.k, s);
}
}  // namespace

struct Helper {
  std::unique_ptr<Gemm> gemm;
  cudaStream_t stream = nullptr;
  cudaEvent_t join = nullptr;
  const std::vector<Fp8TmCall>* calls = nullptr;  // set by run(), cleared by the helper when issued
  std::exception_ptr error;
  std::thread thread;
};

struct LtLanes::Impl {
  int device = 0;
  cudaEvent_t fork = nullptr;
  std::vector<Helper> helpers;  // lanes 1 ..
  std::mutex mu;
  std::condition_variable work, done;
  bool stop = false;
  std::mutex run_mu;  // one run() at a time: the helpers hold one batch each

  void stop_helpers() {
    {
      std::lock_guard<std::mutex> lock(mu);
      stop = true;
    }
    work.notify_all();
    for (Helper& h : helpers)
      if (h.thread.joinable()) h.thread.join();
  }

  void serve(Helper& h) {
    check_cuda(cudaSetDevice(device), "moe lanes: set device");
    std::unique_lock<std::mutex> lock(mu);
    for (;;) {
      work.wait(lock, [&] { return stop || h.calls; });
      if (stop) return;
      const auto* calls = h.calls;
      lock.unlock();
      std::exception_ptr err;
      try {
        check_cuda(cudaStreamWaitEvent(h.stream, fork, 0), "moe lanes: fork wait");
        issue(*h.gemm, h.stream, *calls);
        check_cuda(cudaEventRecord(h.join, h.stream), "moe lanes: join");
      } catch (...) {
        err = std::current_exception();
      }
      lock.lock();
      h.error = err, h.calls = nullptr;
      done.notify_all();
    }
  }
};

LtLanes::LtLanes(int device, int lanes) : lanes_(lanes), impl_(std::make_unique<Impl>()) {
  impl_->device = device;
  check_cuda(cudaEventCreateWithFlags(&impl_->fork, cudaEventDisableTiming), "moe lanes: event");
  impl_->helpers.resize(lanes - 1);
  for (Helper& h : impl_->helpers) {
    h.gemm = std::make_unique<Gemm>(0);  // fp8_block_tm runs without workspace
    check_cuda(cudaStreamCreateWithFlags(&h.stream, cudaStreamNonBlocking), "moe lanes: stream");
    check_cuda(cudaEventCreateWithFlags(&h.join, cudaEventDisableTiming), "moe lanes: event");
  }
  try {
    for (Helper& h : impl_->helpers) h.thread = std::thread([this, &h] { impl_->serve(h); });
  } catch (...) {  // no thread may outlive a half-built LtLanes
    impl_->stop_helpers();
    throw;
  }
}

LtLanes::~LtLanes() { impl_->stop_helpers(); }

LtLanes& LtLanes::of_current_device() {
  static std::mutex mu;
  // Never destroyed: the helpers' Gemms would outlive the CUDA runtime's teardown at exit otherwise.
  static auto* all = new std::map<int, std::unique_ptr<LtLanes>>();
  static const int lanes = std::clamp(env_int("TROUPE_MOE_LT_LANES", 4), 1, kMaxLanes);
  int dev = 0;
  check_cuda(cudaGetDevice(&dev), "moe lanes: device");
  std::lock_guard<std::mutex> lock(mu);
  auto& slot = (*all)[dev];
  if (!slot) slot.reset(new LtLanes(dev, lanes));
  return *slot;
}

void LtLanes::run(Gemm& gemm, cudaStream_t s, const std::vector<std::vector<Fp8TmCall>>& calls) {
  Impl& im = *impl_;
  std::lock_guard<std::mutex> one_run(im.run_mu);
  const int used = std::min<int>(int(calls.size()), lanes_);
  if (used > 1) {
    check_cuda(cudaEventRecord(im.fork, s), "moe lanes: fork");
    std::lock_guard<std::mutex> lock(im.mu);
    for (int l = 1; l < used; ++l) im.helpers[l - 1].calls = &calls[l];
    im.work.notify_all();
  }
  std::exception_ptr err;
  try {
    if (!calls.empty()) issue(gemm, s, calls[0]);
  } catch (...) {
    err = std::current_exception();
  }
  if (used <= 1) {
    if (err) std::rethrow_exception(err);
    return;
  }
  std::unique_lock<std::mutex> lock(im.mu);
  im.done.wait(lock, [&] {
    for (int l = 1; l < used; ++l)
      if (im.helpers[l - 1].calls) return false;
    return true;
  });
  for (int l = 1; l < used; ++l) {
    Helper& h = im.helpers[l - 1];
    if (h.error && !err) err = h.error;
    h.error = nullptr;
    if (cudaStreamWaitEvent(s, h.join, 0) != cudaSuccess && !err)
      err = std::make_exception_ptr(std::runtime_error("moe lanes: join wait failed"));
  }
  if (err) std::rethrow_exception(err);
}

}  // namespace troupe::kernels
