// troupe_route_sensitivity A_DIR B_DIR: the cpu oracle's last-token logits for A's golden prompts under the
// weights of A and of B (B = A with RMSNorm weights perturbed by perturb_norms.py), per prompt as max |dlogit|
// over max |logit|. No GPU: it measures how much the oracle itself moves under bf16-sized noise, the yardstick
// for the cuda check's MoE rows.
#include "model/checkpoint/checkpoint.hpp"
#include "model/cpu/cpu_model.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

using namespace troupe;

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: troupe_route_sensitivity A_DIR B_DIR\n");
    return 2;
  }
  Checkpoint g = Checkpoint::open(std::string(argv[1]) + "/golden.safetensors");
  std::vector<std::vector<std::int32_t>> prompts;
  for (int i = 0; g.has("prompt." + std::to_string(i) + ".tokens"); ++i) {
    const TensorView& t = g.tensor("prompt." + std::to_string(i) + ".tokens");
    prompts.emplace_back(std::size_t(t.numel()));
    std::memcpy(prompts.back().data(), t.data, prompts.back().size() * 4);
  }
  std::vector<std::vector<std::vector<float>>> logits;
  for (int m = 1; m <= 2; ++m) {
    cpu::CpuModelOptions o;
    o.model_dir = argv[m];
    o.num_blocks = 64;
    auto model = cpu::load_cpu_model(o);
    std::vector<std::vector<std::uint32_t>> tables;
    std::vector<cpu::Chunk> chunks;
    std::uint32_t next = 0;
    for (const auto& p : prompts) {
      tables.emplace_back();
      for (std::size_t b = 0; b < (p.size() + 15) / 16; ++b) tables.back().push_back(next++);
    }
    for (std::size_t i = 0; i < prompts.size(); ++i) chunks.push_back({prompts[i], 0, tables[i], true});
    logits.push_back(model->forward(chunks));
  }
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    float scale = 1e-6f, d = 0;
    for (std::size_t v = 0; v < logits[0][i].size(); ++v) {
      scale = std::max(scale, std::abs(logits[0][i][v]));
      d = std::max(d, std::abs(logits[0][i][v] - logits[1][i][v]));
    }
    std::printf("prompt of %3zu tokens: max|dlogit| %.2f%% of max|logit|\n", prompts[i].size(), 100 * d / scale);
  }
  return 0;
}
