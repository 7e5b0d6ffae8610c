#include "actors/gpu_worker/gpu_worker.hpp"

#include "actors/gpu_worker/backend.hpp"
#include "actors/gpu_worker/cpu_backend.hpp"
#include "actors/gpu_worker/sim_backend.hpp"
#ifdef TROUPE_WITH_CUDA
#include "actors/gpu_worker/cuda_backend.hpp"
#endif

#include <spdlog/spdlog.h>

#include <chrono>
#include <memory>

namespace troupe {

std::unique_ptr<Backend> make_backend(const std::string& name) {
  if (name == "sim") return std::make_unique<SimBackend>();
  if (name == "cpu") return std::make_unique<CpuBackend>();
#ifdef TROUPE_WITH_CUDA
  if (name == "cuda") return std::make_unique<CudaBackend>();
  throw std::runtime_error("backend '" + name + "' is not available in this build (available: cuda, cpu, sim)");
#else
  throw std::runtime_error("backend '" + name + "' is not available in this build (available: cpu, sim)");
#endif
}

namespace {
struct WorkerState {
  std::uint32_t rank = 0;
  std::unique_ptr<Backend> backend;
  std::unique_ptr<BatchState> batch;
};

// logprob_counts: each sampling request's sampling.logprobs (-1: it asked for none, so none travel).
StepResultMsg step_result(std::uint64_t step, std::uint32_t rank, const std::string& error,
                          const std::unordered_map<std::uint64_t, std::int32_t>& logprob_counts,
                          const SampledTokens& sampled, std::uint64_t us) {
  return StepResultMsg::make([&](schema::StepResult::Builder b) {
    b.setStepId(step);
    b.setRank(rank);
    b.setExecUs(us);
    b.setError(error);
    if (rank != 0) return;  // other ranks sampled the same tokens; only rank 0 reports them
    auto outs = b.initOutputs(static_cast<unsigned>(sampled.size()));
    unsigned i = 0;
    for (auto& [id, s] : sampled) {
      outs[i].setRequestId(id);
      outs[i].initTokens(1).set(0, s.token);
      write_prompt_logprobs(outs[i], s);
      if (auto it = logprob_counts.find(id); it != logprob_counts.end() && it->second >= 0) {
        auto lp = outs[i].initLogprobs(1)[0];
        lp.setLogprob(s.logprob);
        auto top = lp.initTop(static_cast<unsigned>(s.top.size()));
        for (unsigned k = 0; k < s.top.size(); ++k) {
          top[k].setToken(s.top[k].token);
          top[k].setLogprob(s.top[k].logprob);
        }
      }
      ++i;
    }
  });
}
}  // namespace

gpu_worker_actor::behavior_type gpu_worker(gpu_worker_actor::pointer self) {
  auto st = std::make_shared<WorkerState>();
  return {
    [st](const WorkerInitMsg& msg) -> caf::result<WorkerReadyMsg> {
      auto v = msg.view();
      st->rank = v->getRank();
      try {
        st->backend = make_backend(v->getBackend());
        auto info = st->backend->init(*v);
        st->batch = std::make_unique<BatchState>(v->getBlockSize());
        return WorkerReadyMsg::make([&](schema::WorkerReady::Builder b) {
          b.setRank(st->rank);
          b.setDevice(info.device);
          b.setNumBlocks(info.num_blocks);
        });
      } catch (const std::exception& e) {
        return caf::make_error(caf::sec::runtime_error, std::string(e.what()));
      }
    },
    [st](const StepPlanMsg& msg) -> StepResultMsg {
      auto t0 = std::chrono::steady_clock::now();
      auto plan = msg.view();
      if (!st->batch) return step_result(plan->getStepId(), st->rank, "worker not initialised", {}, {}, 0);
      std::string err = st->batch->apply(*plan);
      SampledTokens sampled;
      std::unordered_map<std::uint64_t, std::int32_t> logprob_counts;
      if (err.empty()) {
        try {
          for (auto* r : st->batch->scheduled()) logprob_counts[r->id] = r->sampling.logprobs;
          sampled = st->backend->execute(st->batch->scheduled());
          st->batch->commit(sampled);
        } catch (const std::exception& e) {
          err = e.what();
        }
      }
      if (!err.empty()) spdlog::error("worker {}: step {} failed: {}", st->rank, plan->getStepId(), err);
      auto us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0);
      return step_result(plan->getStepId(), st->rank, err, logprob_counts, sampled, us.count());
    },
  };
}

}  // namespace troupe
