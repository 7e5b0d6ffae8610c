// prompt_logprobs on the GPU (CudaModel::forward's all-row slices + GpuPromptLogprobs) against the cpu backend's
// arithmetic (the cpu oracle's every-row logits through model/sampling's position_logprob), on stories260K:
// a 40-token prompt in 13-token chunks gathering prompt logprobs (top 5), next to a second sequence that only
// samples, with max-num-seqs 4 so every chunk's rows go through the logits buffer in slices of 4.
//
// Two comparisons per scored row:
//   kernel:  the GPU's numbers against position_logprob of the same GPU logits (copied back per slice): the
//            same float32 inputs, so |dlogprob| <= 1e-4 (a 512-way sum in another order), equal rank, equal top ids;
//   oracle:  against position_logprob of the oracle's logits: logprob = x_t - lse moves by at most 2 max|dx|,
//            so the logits' bf16 tolerance (8% of max|logit|, cuda_check.cpp) gives |dlogprob| <= 0.16 max|logit|.
#include "model/cpu/cpu_model.hpp"
#include "model/cuda/cuda_model.hpp"
#include "model/cuda/gpu_sampler.hpp"
#include "model/sampling/sampling.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>

using namespace troupe;

namespace {

constexpr int kTop = 5;
constexpr std::uint32_t kBlock = 16;

struct Meter {
  int rows = 0, rank_equal = 0, top_equal = 0;
  float max_d = 0, max_rel = 0;
  void add(const PositionLogprob& got, const PositionLogprob& want, float scale) {
    ++rows;
    const float d = std::abs(got.logprob - want.logprob);
    max_d = std::max(max_d, d);
    max_rel = std::max(max_rel, d / scale);
    rank_equal += got.rank == want.rank;
    bool same = got.top.size() == want.top.size();
    for (std::size_t j = 0; same && j < got.top.size(); ++j) same = got.top[j].token == want.top[j].token;
    top_equal += same;
  }
};

float max_abs(std::span<const float> v) {
  float m = 1e-6f;
  for (float x : v) m = std::max(m, std::abs(x));
  return m;
}

}  // namespace

// Returns the number of failed checks (0 or more), printing one line per comparison.
int check_prompt_logprobs(const std::string& root) {
  const std::string dir = root + "/models/stories260K";
  cpu::CpuModelOptions co;
  co.model_dir = dir;
  co.block_size = kBlock;
  co.num_blocks = 32;
  auto cpu = cpu::load_cpu_model(co);
  cuda::CudaModelOptions go;
  go.model_dir = dir;
  go.block_size = kBlock;
  go.max_num_batched_tokens = 64;
  go.max_num_seqs = 4;
  go.max_model_len = 256;
  go.num_blocks_override = 32;
  auto gpu = cuda::load_cuda_model(go);
  const int V = int(gpu->config().vocab_size);
  cuda::GpuPromptLogprobs plp(64, V, gpu->stream());

  std::mt19937 rng(11);
  std::vector<std::int32_t> prompt(40), other(9);
  for (auto& t : prompt) t = std::int32_t(rng() % std::uint32_t(V));
  for (auto& t : other) t = std::int32_t(rng() % std::uint32_t(V));
  const std::vector<std::uint32_t> table_a = {3, 17, 5}, table_b = {30};
  Meter kernel, oracle;
  std::vector<float> host(std::size_t(64) * std::size_t(V));
  for (std::uint32_t done = 0; done < prompt.size();) {
    const std::uint32_t n = std::min<std::uint32_t>(13, std::uint32_t(prompt.size()) - done);
    const bool last = done + n == prompt.size();
    const std::span<const std::int32_t> a = std::span(prompt).subspan(done, n);
    // the second sequence: its whole prompt in the first step, then nothing
    std::vector<cpu::Chunk> cc = {{a, done, table_a, last, true}};
    std::vector<cuda::StepChunk> gc = {{a, done, table_a, last}};
    if (done == 0) cc.push_back({other, 0, table_b, true, false}), gc.push_back({other, 0, table_b, true});
    std::vector<std::int32_t> targets(n + (done == 0 ? other.size() : 0), -1);
    for (std::uint32_t k = 0; k < n; ++k)
      if (done + k + 1 < prompt.size()) targets[k] = prompt[done + k + 1];
    plp.begin(targets);
    const std::vector<std::uint8_t> all_rows = {1, 0};
    int slices = 0;
    auto on_slice = [&](int first, int rows, const float* logits) {
      plp.add(logits, first, rows, kTop);
      TROUPE_CUDA_CHECK(cudaMemcpyAsync(host.data() + std::size_t(first) * std::size_t(V), logits,
                                        std::size_t(rows) * std::size_t(V) * 4, cudaMemcpyDeviceToHost, gpu->stream()));
      ++slices;
    };
    gpu->forward(gc, std::span(all_rows).first(gc.size()), on_slice);
    plp.finish(int(targets.size()));
    auto ref = cpu->forward(cc);  // rows: every token of chunk a, then b's last
    if (slices != int((n + 3) / 4)) {
      std::printf("FAIL prompt_logprobs: %d slices for %u rows (want %u)\n", slices, n, (n + 3) / 4);
      return 1;
    }
    for (std::uint32_t k = 0; k < n; ++k) {
      if (targets[k] < 0) continue;
      const std::span<const float> g(host.data() + std::size_t(k) * std::size_t(V), std::size_t(V));
      const PositionLogprob got = plp.result(int(k), kTop);
      kernel.add(got, position_logprob(g, targets[k], kTop), 1.0f);
      oracle.add(got, position_logprob(ref[k], targets[k], kTop), max_abs(ref[k]));
    }
    done += n;
  }
  int failures = 0;
  const bool k_ok = kernel.rows == 39 && kernel.max_d <= 1e-4f && kernel.rank_equal == kernel.rows &&
                    kernel.top_equal == kernel.rows;
  const bool o_ok = oracle.rows == 39 && oracle.max_rel <= 0.16f;
  failures += !k_ok + !o_ok;
  std::printf("%s prompt_logprobs kernel vs position_logprob (same logits) rows %d  max|dlogprob| %.3g  rank %d/%d  "
              "top-%d ids %d/%d\n",
              k_ok ? "PASS" : "FAIL", kernel.rows, kernel.max_d, kernel.rank_equal, kernel.rows, kTop, kernel.top_equal,
              kernel.rows);
  std::printf("%s prompt_logprobs gpu vs cpu oracle (13-token chunks, slices of 4)   rows %d  max|dlogprob| %.3g "
              "(%.2f%% of max|logit|, tol 16%%)  rank %d/%d  top-%d ids %d/%d\n",
              o_ok ? "PASS" : "FAIL", oracle.rows, oracle.max_d, 100 * oracle.max_rel, oracle.rank_equal, oracle.rows,
              kTop, oracle.top_equal, oracle.rows);
  return failures;
}
