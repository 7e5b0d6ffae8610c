// troupe_cuda_check --smoke CONFIG_DIR L1 L2: a model of CONFIG_DIR's config.json cut to L1 and then L2
// layers, dummy weights filled on the GPU (FP8 where the config is block-quantized), run through decode
// steps of batch 1, 64 and 256 (context 1024) and a 4096-token prefill. Checks that every logit is finite
// and prints the time per step; (t(L2) - t(L1)) / (L2 - L1) is the time of one of the extra layers.
// Decode steps are timed twice on the same model: eager, then replaying the decode CUDA graphs (decode
// rows at context 300 too: their graphs plan split-KV for the 512 bucket). With --eager no graph is
// captured at all (enforce-eager, as a server would run): both columns are then eager.
#include "model/cuda/cuda_model.hpp"
#include "tests/cuda/timeline_dump.hpp"

#include <nvtx3/nvToolsExt.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <sstream>
#include <string>
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
  std::vector<double> ms;  // per row of kRows: eager, then graphs (the prefill row: eager twice)
  bool finite = true;
  int graphs = 0;
  std::int64_t graph_steps = 0;
};

struct Row {
  const char* what;
  int batch, context;  // context 0: the 4096-token prefill
};
constexpr Row kRows[] = {{"decode batch 1", 1, 1024},       {"decode batch 64", 64, 1024},
                         {"decode batch 256", 256, 1024},   {"decode b1 ctx 300", 1, 300},
                         {"decode b64 ctx 300", 64, 300},   {"prefill 4096 tokens", 4096, 0}};

// TROUPE_SMOKE_ROWS=text: only the rows whose name contains it (A/B runs of one row, more iterations).
bool selected(const Row& r) {
  const char* env = std::getenv("TROUPE_SMOKE_ROWS");
  return !env || !*env || std::string(r.what).find(env) != std::string::npos;
}

// Mean ms of `iters` forwards of `chunks` after one warm-up; checks the first logits row is finite. A non-empty
// `timeline` label records the timed steps' in-graph timeline when TROUPE_TIMELINE is set (timeline_dump.hpp).
double time_step(cuda::CudaModel& m, const std::vector<cuda::StepChunk>& chunks, bool& finite,
                 const std::string& timeline) {
  auto run = [&] { return m.forward(chunks); };
  auto dl = run();
  std::vector<float> row(m.config().vocab_size);
  TROUPE_CUDA_CHECK(cudaStreamSynchronize(m.stream()));
  TROUPE_CUDA_CHECK(cudaMemcpy(row.data(), dl.data, row.size() * 4, cudaMemcpyDeviceToHost));
  for (float v : row) finite = finite && std::isfinite(v);
  // TROUPE_SMOKE_ITERS: fewer steps under a profiler (tools/device/profile.sh), which replays each kernel.
  const char* env = std::getenv("TROUPE_SMOKE_ITERS");
  const int iters = env ? std::max(1, std::atoi(env)) : 5;
  std::optional<smoke::TimelineCapture> tl;
  if (!timeline.empty()) tl.emplace();
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < iters; ++i) run();
  TROUPE_CUDA_CHECK(cudaStreamSynchronize(m.stream()));
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / iters;
  if (tl) tl->finish(m.stream(), iters, timeline);
  return ms;
}

Timing measure(const std::string& dir, bool eager) {
  cuda::CudaModelOptions o;
  o.model_dir = dir;
  o.dummy_weights = true;
  o.seed = 1;
  o.max_num_batched_tokens = 4096;
  o.max_num_seqs = 256;
  o.max_model_len = 4096;
  o.num_blocks_override = 256 * 64 + 256;
  o.enforce_eager = eager;
  auto m = cuda::load_cuda_model(o);
  Timing t;
  std::vector<std::int32_t> tokens(4096);
  for (std::size_t i = 0; i < tokens.size(); ++i) tokens[i] = std::int32_t((i * 7919) % m->config().vocab_size);
  std::vector<std::vector<std::uint32_t>> tables(256);
  for (std::uint32_t s = 0; s < 256; ++s)
    for (std::uint32_t b = 0; b < 64; ++b) tables[s].push_back(s * 64 + b);
  std::vector<std::uint32_t> big;
  for (std::uint32_t b = 0; b < 256; ++b) big.push_back(256 * 64 + b);
  for (const Row& r : kRows) {
    if (!selected(r)) {
      t.ms.insert(t.ms.end(), 2, std::nan(""));
      continue;
    }
    std::vector<cuda::StepChunk> chunks;
    if (r.context == 0) chunks = {{tokens, 0, big, true}};
    for (int s = 0; r.context && s < r.batch; ++s)
      chunks.push_back({std::span(tokens).subspan(std::size_t(s), 1), std::uint32_t(r.context - 1),
                        tables[std::size_t(s)], true});
    for (bool graphs : {false, true}) {
      m->set_use_graphs(graphs);
      // One NVTX range per row and mode: `ncu --nvtx --nvtx-include "prefill 4096 tokens eager/"` profiles one row.
      const std::string range = std::string(r.what) + (graphs ? " graphs" : " eager");
      nvtxRangePushA(range.c_str());
      std::string label;  // the timeline's file: <layers>_<row>, decode rows with graphs only
      if (graphs && r.context) label = std::to_string(m->config().num_hidden_layers) + "_" + r.what;
      std::replace(label.begin(), label.end(), ' ', '_');
      t.ms.push_back(time_step(*m, chunks, t.finite, label));
      nvtxRangePop();
    }
  }
  t.graphs = m->num_decode_graphs();
  t.graph_steps = m->graph_steps();
  return t;
}

}  // namespace

int run_smoke(const std::string& dir, int l1, int l2, bool eager) {
  Timing a = measure(with_layers(dir, l1), eager), b = measure(with_layers(dir, l2), eager);
  // Graphs must have served the decode rows unless --eager (5 timed + 1 warm-up step per decode row) or no decode
  // row is selected (TROUPE_SMOKE_ROWS="prefill ...").
  bool decode_rows = false;
  for (const Row& r : kRows) decode_rows = decode_rows || (selected(r) && r.context > 0);
  const bool ok = a.finite && b.finite && (eager || !decode_rows || (a.graph_steps > 0 && b.graph_steps > 0));
  std::printf("%s smoke %s: dummy weights, logits finite: %s; %d / %d decode graphs, %lld / %lld graph steps\n",
              ok ? "PASS" : "FAIL", dir.c_str(), a.finite && b.finite ? "yes" : "NO", a.graphs, b.graphs,
              (long long)a.graph_steps, (long long)b.graph_steps);
  std::printf("     %-20s %-28s %-28s per extra layer: eager  graphs\n", "", "eager/graphs ms", "eager/graphs ms");
  for (std::size_t i = 0; i < std::size(kRows); ++i) {
    if (!selected(kRows[i])) continue;
    const double ae = a.ms[2 * i], ag = a.ms[2 * i + 1], be = b.ms[2 * i], bg = b.ms[2 * i + 1];
    std::printf("     %-20s %2d layers %7.3f / %7.3f, %2d layers %7.3f / %7.3f  -> %7.3f  %7.3f ms\n", kRows[i].what, l1,
                ae, ag, l2, be, bg, (be - ae) / (l2 - l1), (bg - ag) / (l2 - l1));
  }
  return ok ? 0 : 1;
}
