// Is the paged decode path consistent with prefill on the GPU? Per golden prompt (with its first 6 continuation
// tokens, golden prompt.N.continuation, else 6 random ones): the GPU's logits of the last prompt position and
// the 6 after it, once from one prefill of the whole sequence (every row, CudaModel::forward's all-row slices)
// and once from a prefill of the prompt followed by 6 single-token decode steps (m = 1: the padded FP8 GEMMs,
// the absorbed MLA decode); and the cpu oracle's rows. If decode-vs-prefill on the GPU is far below
// GPU-vs-oracle, the decode path adds nothing of its own: what separates the GPU from the oracle is the step's
// arithmetic (bf16 / FP8 activations), which prefill has too. Informational (prints, counts no failure).
#include "model/checkpoint/checkpoint.hpp"
#include "model/cpu/cpu_model.hpp"
#include "model/cuda/cuda_model.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>

using namespace troupe;

namespace {

float rel(std::span<const float> a, std::span<const float> b) {
  float scale = 1e-6f, d = 0;
  for (std::size_t i = 0; i < a.size(); ++i) scale = std::max(scale, std::abs(a[i])), d = std::max(d, std::abs(a[i] - b[i]));
  return d / scale;
}

std::vector<std::int32_t> ints(const Checkpoint& g, const std::string& name) {
  const TensorView& t = g.tensor(name);
  std::vector<std::int32_t> v(std::size_t(t.numel()));
  std::memcpy(v.data(), t.data, v.size() * 4);
  return v;
}

}  // namespace

void decode_consistency(const std::string& dir, const std::string& name) {
  constexpr std::uint32_t kBlock = 16;
  cpu::CpuModelOptions co;
  co.model_dir = dir;
  co.block_size = kBlock;
  co.num_blocks = 64;
  auto cpu = cpu::load_cpu_model(co);
  cuda::CudaModelOptions go;
  go.model_dir = dir;
  go.block_size = kBlock;
  go.max_num_batched_tokens = 256;
  go.max_num_seqs = 16;
  go.max_model_len = 1024;
  go.num_blocks_override = 64;
  go.exact_router = true;
  auto gpu = cuda::load_cuda_model(go);
  const std::size_t V = gpu->config().vocab_size;
  Checkpoint g = Checkpoint::open(dir + "/golden.safetensors");
  std::mt19937 rng(5);
  std::printf("     %s decode vs prefill on the GPU (rows: last prompt position + 6 decode), max over rows of "
              "max|dlogit|/max|logit|:\n",
              name.c_str());
  for (int i = 0; g.has("prompt." + std::to_string(i) + ".tokens"); ++i) {
    const std::string p = "prompt." + std::to_string(i);
    std::vector<std::int32_t> seq = ints(g, p + ".tokens");
    const std::size_t n = seq.size();
    if (g.has(p + ".continuation")) {
      const auto cont = ints(g, p + ".continuation");
      seq.insert(seq.end(), cont.begin(), cont.begin() + std::min<std::ptrdiff_t>(6, std::ptrdiff_t(cont.size())));
    } else {
      for (int j = 0; j < 6; ++j) seq.push_back(std::int32_t(rng() % V));
    }
    std::vector<std::uint32_t> t_full, t_dec;
    for (std::uint32_t b = 0; b * kBlock < seq.size(); ++b) t_full.push_back(2 * b), t_dec.push_back(2 * b + 1);
    // one prefill, every row
    std::vector<float> full(seq.size() * V), dec((seq.size() - n + 1) * V), h(V);
    const cuda::StepChunk whole{seq, 0, t_full, true};
    const std::uint8_t all = 1;
    gpu->forward(std::span(&whole, 1), std::span(&all, 1), [&](int first, int rows, const float* l) {
      TROUPE_CUDA_CHECK(cudaMemcpyAsync(full.data() + std::size_t(first) * V, l, std::size_t(rows) * V * 4,
                                        cudaMemcpyDeviceToHost, gpu->stream()));
    });
    TROUPE_CUDA_CHECK(cudaStreamSynchronize(gpu->stream()));
    // prompt prefill, then one token per step
    for (std::size_t pos = n - 1, k = 0; pos < seq.size(); ++pos, ++k) {
      const bool first = pos == n - 1;
      const cuda::StepChunk c{first ? std::span<const std::int32_t>(seq).first(n) : std::span<const std::int32_t>(seq).subspan(pos, 1),
                              first ? 0u : std::uint32_t(pos), t_dec, true};
      const cuda::DeviceLogits dl = gpu->forward(std::span(&c, 1));
      TROUPE_CUDA_CHECK(cudaStreamSynchronize(gpu->stream()));
      TROUPE_CUDA_CHECK(cudaMemcpy(dec.data() + k * V, dl.data, V * 4, cudaMemcpyDeviceToHost));
    }
    const cpu::Chunk oc{seq, 0, t_full, true, true};
    auto ref = cpu->forward(std::span(&oc, 1));
    float gg = 0, fo = 0, dO = 0;
    for (std::size_t pos = n - 1, k = 0; pos < seq.size(); ++pos, ++k) {
      const std::span<const float> f(full.data() + pos * V, V), d(dec.data() + k * V, V);
      gg = std::max(gg, rel(f, d));
      fo = std::max(fo, rel(ref[pos], f));
      dO = std::max(dO, rel(ref[pos], d));
    }
    std::printf("       prompt of %3zu tokens: gpu decode vs gpu prefill %6.2f%%   gpu prefill vs oracle %6.2f%%   "
                "gpu decode vs oracle %6.2f%%\n",
                n, 100 * gg, 100 * fo, 100 * dO);
  }
}
