// troupe_cuda_check --smoke CONFIG_DIR L1 L2: a model of CONFIG_DIR's config.json cut to L1 and then L2
// layers, dummy weights filled on the GPU (FP8 where the config is block-quantized), run through decode
// steps of batch 1, 64 and 256 (context 1024) and a 4096-token prefill. Checks that every logit is finite
// and prints the time per step; (t(L2) - t(L1)) / (L2 - L1) is the time of one of the extra layers.
#include "model/cuda/cuda_model.hpp"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

using namespace troupe;

namespace {

std::string with_layers(const std::string& dir, int layers) {
  std::ifstream in(dir + "/config.json");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  const std::string key = "\"num_hidden_layers\":";
  auto at = text.find(key);
  if (at == std::string::npos) throw std::runtime_error("no num_hidden_layers in " + dir + "/config.json");
  text.replace(at, text.find_first_of(",}", at) - at, key + " " + std::to_string(layers));
  const std::string out = "/tmp/troupe_smoke_" + std::to_string(layers);
  std::filesystem::create_directories(out);
  std::ofstream(out + "/config.json") << text;
  return out;
}

struct Timing {
  std::vector<double> ms;  // decode 1, 64, 256; prefill 4096
  bool finite = true;
};

// Mean ms of `iters` forwards of `chunks` after one warm-up; checks the first logits row is finite.
double time_step(cuda::CudaModel& m, const std::vector<cuda::StepChunk>& chunks, bool& finite) {
  auto run = [&] { return m.forward(chunks); };
  auto dl = run();
  std::vector<float> row(m.config().vocab_size);
  TROUPE_CUDA_CHECK(cudaStreamSynchronize(m.stream()));
  TROUPE_CUDA_CHECK(cudaMemcpy(row.data(), dl.data, row.size() * 4, cudaMemcpyDeviceToHost));
  for (float v : row) finite = finite && std::isfinite(v);
  const int iters = 5;
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < iters; ++i) run();
  TROUPE_CUDA_CHECK(cudaStreamSynchronize(m.stream()));
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / iters;
}

Timing measure(const std::string& dir) {
  cuda::CudaModelOptions o;
  o.model_dir = dir;
  o.dummy_weights = true;
  o.seed = 1;
  o.max_num_batched_tokens = 4096;
  o.max_num_seqs = 256;
  o.max_model_len = 4096;
  o.num_blocks_override = 256 * 64 + 256;
  auto m = cuda::load_cuda_model(o);
  Timing t;
  std::vector<std::int32_t> tokens(4096);
  for (std::size_t i = 0; i < tokens.size(); ++i) tokens[i] = std::int32_t((i * 7919) % m->config().vocab_size);
  std::vector<std::vector<std::uint32_t>> tables(256);
  for (std::uint32_t s = 0; s < 256; ++s)
    for (std::uint32_t b = 0; b < 64; ++b) tables[s].push_back(s * 64 + b);
  for (int batch : {1, 64, 256}) {
    std::vector<cuda::StepChunk> chunks;
    for (int s = 0; s < batch; ++s)
      chunks.push_back({std::span(tokens).subspan(std::size_t(s), 1), 1023, tables[std::size_t(s)], true});
    t.ms.push_back(time_step(*m, chunks, t.finite));
  }
  std::vector<std::uint32_t> big;
  for (std::uint32_t b = 0; b < 256; ++b) big.push_back(256 * 64 + b);
  std::vector<cuda::StepChunk> prefill = {{tokens, 0, big, true}};
  t.ms.push_back(time_step(*m, prefill, t.finite));
  return t;
}

}  // namespace

int run_smoke(const std::string& dir, int l1, int l2) {
  Timing a = measure(with_layers(dir, l1)), b = measure(with_layers(dir, l2));
  const char* what[] = {"decode batch 1", "decode batch 64", "decode batch 256", "prefill 4096 tokens"};
  const bool ok = a.finite && b.finite;
  std::printf("%s smoke %s: dummy weights, logits finite: %s\n", ok ? "PASS" : "FAIL", dir.c_str(), ok ? "yes" : "NO");
  for (int i = 0; i < 4; ++i)
    std::printf("     %-20s %2d layers %8.3f ms, %2d layers %8.3f ms  -> %.3f ms per extra layer\n", what[i], l1,
                a.ms[std::size_t(i)], l2, b.ms[std::size_t(i)], (b.ms[std::size_t(i)] - a.ms[std::size_t(i)]) / (l2 - l1));
  return ok ? 0 : 1;
}
