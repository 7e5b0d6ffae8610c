// troupe_cuda_check: the cuda model against the cpu oracle (model/cpu) on the device. A plain program
// (the GPU machine has no Boost or CAF): prints one line per check and exits 1 when any fails.
//
//   troupe_cuda_check [--root DIR] [--bisect] [--rows]   (DIR: the source tree, default "."; --rows: per-row
//                                                        differences of the chunked and decode steps)
//   troupe_cuda_check --smoke CONFIG_DIR L1 L2 [--eager]   (dummy weights, timing eager vs decode
//                                                           graphs: smoke.cpp; --eager captures none)
//
// Per checkpoint (stories260K; the tiny DeepSeek v3_bf16, v3_fp8, v2_lite of tests/data/deepseek_tiny):
//   1. full prompts of 1, 5, 17, 64 and 120 tokens, all in one mixed step, over shuffled block tables;
//   2. the same prompts again through chunked prefill (13-token chunks) interleaved with paged decode
//      steps (teacher-forced with the oracle's argmax, so both models see the same tokens);
// Step 2 runs on two GPU models fed the same steps: one replaying decode CUDA graphs (decode_graphs.hpp;
// the paged decode steps must go through them) and one with enforce-eager; both are checked against the
// oracle, and their decode rows against each other (bit-identical where the padded batch picks the same
// kernels; reported, not checked).
// comparing the last-token logits of every chunk that has them: max |dlogit| relative to the row's
// largest |logit|, and argmax agreement (a disagreement where the oracle's two best logits are closer
// than the tolerance counts as a tie, not a failure). Then stories260K greedy text against llama2.c's:
// the 64-token prompted run must be equal; the 256-token run from BOS is teacher-forced along llama2.c's tokens,
// and every position must pick llama2.c's token or sit within a near tie of it (llama2.c runs float32 weights;
// ours are bf16, and a long greedy run eventually takes another branch at a near tie: measured, it parted at
// token 236 with cuBLASLt projections, at 196 with the decode GEMVs), parting no earlier than token 150.
//
// DeepSeek MoE rows: the router is discrete, and a token whose top-k (or, in V3, top groups) is near-tied takes
// another expert from a 0.5% change of its input; that token's output, and through attention every later
// token's, then moves by tens of percent. The oracle itself does so: under norm weights perturbed by 0.4%
// (envelope.cpp), its tiny-V3 logits move by up to 41% on single prompts (V2-Lite: under 4%). So each prompt's
// rows are allowed max(tolerance, 2 x the oracle's own envelope for that prompt over 3 perturbations); every
// row must be within its allowance and agree on argmax (or tie within it). Stories260K (dense): the tolerance.
// --bisect (the tiny checkpoints cut to 1, 2, 3 layers) shows where rows part.
// Since issue 7 the near-tie pair (v3_bf16, v3_fp8) is reported only (INFO): the wide-margin pair v3_margin_bf16 /
// v3_margin_fp8 (tests/data/deepseek_tiny/margin.py: every route wins by >= 0.05, unit attention gain) checks the
// V3 path against the plain tolerances, no envelope (check_wide_margin), and decode_consistency.cpp compares GPU
// decode rows with GPU prefill rows of the same tokens.
//
// Tolerances (why): weights are identical (the oracle upcasts the same bf16 values), so the difference is
// the GPU's bf16 activations: each rounding is within 2^-9 relative, a layer rounds its activations about
// ten times, and 3-5 layers of random-sign errors give ~1% RMS of the logit scale; the max over 512
// logits is within 4 RMS, so 5% of max |logit| is the bf16 bound. stories260K's checkpoint is float32
// and is rounded to bf16 on upload, which adds the same order again: 8%. FP8 checkpoints also quantize
// activations per 1x128 to e4m3 (3 mantissa bits, 2^-4 relative) before each FP8 GEMM: 25%.
#include "model/cpu/cpu_model.hpp"
#include "model/cuda/cuda_model.hpp"
#include "model/checkpoint/checkpoint.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <vector>

using namespace troupe;

namespace {

constexpr std::uint32_t kBlockSize = 16, kNumBlocks = 160;
int g_failures = 0;

struct Stats {
  float max_rel = 0, max_abs = 0;
  int compared = 0, agree = 0, ties = 0, within = 0;
  void add(const std::vector<float>& ref, const float* got, float tol) {
    float scale = 1e-6f, d = 0;
    for (std::size_t i = 0; i < ref.size(); ++i) {
      scale = std::max(scale, std::abs(ref[i]));
      d = std::max(d, std::abs(ref[i] - got[i]));
    }
    max_abs = std::max(max_abs, d);
    max_rel = std::max(max_rel, d / scale);
    within += d / scale <= tol;
    auto a_ref = std::max_element(ref.begin(), ref.end()) - ref.begin();
    auto a_got = std::max_element(got, got + ref.size()) - got;
    ++compared;
    if (a_ref == a_got)
      ++agree;
    else if (ref[std::size_t(a_ref)] - ref[std::size_t(a_got)] <= tol * scale)
      ++ties;
  }
};

bool g_counted = true;  // false: informational lines (the production bf16 router), not pass/fail
// true while the near-tie V3 pair (v3_bf16, v3_fp8) runs: its routes flip under bf16 noise, so its lines are
// reported, never counted; the wide-margin pair (check_wide_margin) is what checks the V3 path.
bool g_near_tie = false;
// Per prompt: the allowed max |dlogit| / max |logit| of its rows (the tolerance, or more where the oracle's
// own envelope is wider: see the header).
std::vector<float> g_allow;

void report(const std::string& what, const Stats& s, float tol) {
  const bool ok = s.compared > 0 && s.within == s.compared && s.agree + s.ties == s.compared;
  if (!ok && g_counted && !g_near_tie) ++g_failures;
  std::printf("%s %-44s rows %3d, %3d within allowance (tol %.0f%%)  max|dlogit| %.4g (%.2f%% of max|logit|)  "
              "argmax %d/%d (+%d ties)\n",
              !g_counted || g_near_tie ? "INFO" : ok ? "PASS" : "FAIL", what.c_str(), s.compared, s.within, 100 * tol, s.max_abs,
              100 * s.max_rel, s.agree, s.compared, s.ties);
}

std::vector<std::int32_t> read_ids(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::int32_t> ids;
  for (std::int32_t v; in >> v;) ids.push_back(v);
  return ids;
}

// The golden prompts of tests/data/deepseek_tiny (1, 5, 17, 64, 120 tokens), or random ones of those lengths.
std::vector<std::vector<std::int32_t>> prompts(const std::string& dir, std::uint32_t vocab) {
  std::vector<std::vector<std::int32_t>> out;
  const std::string golden = dir + "/golden.safetensors";
  if (std::ifstream(golden).good()) {
    Checkpoint g = Checkpoint::open(golden);
    for (int i = 0; g.has("prompt." + std::to_string(i) + ".tokens"); ++i) {
      const TensorView& t = g.tensor("prompt." + std::to_string(i) + ".tokens");
      std::vector<std::int32_t> ids(std::size_t(t.numel()));
      std::memcpy(ids.data(), t.data, ids.size() * 4);
      out.push_back(ids);
    }
    return out;
  }
  std::mt19937 rng(7);
  for (int n : {1, 5, 17, 64, 120}) {
    std::vector<std::int32_t> ids(static_cast<std::size_t>(n));
    for (auto& t : ids) t = std::int32_t(rng() % vocab);
    out.push_back(ids);
  }
  return out;
}

// Block ids handed out from a shuffled pool, so tables are neither contiguous nor ordered.
struct BlockPool {
  std::vector<std::uint32_t> free;
  BlockPool() {
    free.resize(kNumBlocks);
    std::iota(free.begin(), free.end(), 0u);
    std::shuffle(free.begin(), free.end(), std::mt19937(42));
  }
  std::vector<std::uint32_t> take(std::size_t tokens) {
    std::vector<std::uint32_t> t;
    for (std::size_t i = 0; i < (tokens + kBlockSize - 1) / kBlockSize; ++i) {
      if (free.empty()) throw std::runtime_error("check: block pool exhausted");
      t.push_back(free.back());
      free.pop_back();
    }
    return t;
  }
};

// One GPU model's rows of a step, copied to the host.
void run_gpu(cuda::CudaModel& m, const std::vector<cuda::StepChunk>& g, std::vector<float>& host, int& rows) {
  cuda::DeviceLogits dl = m.forward(g);
  host.resize(std::size_t(dl.rows) * m.config().vocab_size);
  TROUPE_CUDA_CHECK(cudaStreamSynchronize(m.stream()));
  TROUPE_CUDA_CHECK(cudaMemcpy(host.data(), dl.data, host.size() * 4, cudaMemcpyDeviceToHost));
  rows = dl.rows;
}

struct Pair {
  std::unique_ptr<cpu::CpuModel> cpu;
  std::unique_ptr<cuda::CudaModel> gpu;
  std::unique_ptr<cuda::CudaModel> eager;  // enforce-eager twin fed the same steps (null: none)
  std::vector<float> host, host_eager;
  // Runs one step on all; returns per chunk with logits: (oracle row, gpu row pointer into host); `got_eager`
  // gets the eager twin's rows when there is one.
  std::vector<std::vector<float>> step(const std::vector<cpu::Chunk>& chunks, std::vector<const float*>& got,
                                       std::vector<const float*>* got_eager = nullptr) {
    std::vector<cuda::StepChunk> g;
    for (const auto& c : chunks) g.push_back({c.tokens, c.start_pos, c.block_table, c.wants_logits});
    const std::size_t V = gpu->config().vocab_size;
    int rows = 0, rows_eager = 0;
    run_gpu(*gpu, g, host, rows);
    if (eager) run_gpu(*eager, g, host_eager, rows_eager);
    auto ref = cpu->forward(chunks);
    if (ref.size() != std::size_t(rows) || (eager && rows_eager != rows))
      throw std::runtime_error("check: logits row counts differ");
    got.clear();
    for (int r = 0; r < rows; ++r) got.push_back(host.data() + std::size_t(r) * V);
    if (got_eager) {
      got_eager->clear();
      for (int r = 0; eager && r < rows; ++r) got_eager->push_back(host_eager.data() + std::size_t(r) * V);
    }
    return ref;
  }
};

cuda::CudaModelOptions gpu_options(const std::string& dir, bool exact_router) {
  cuda::CudaModelOptions go;
  go.model_dir = dir;
  go.block_size = kBlockSize;
  go.max_num_batched_tokens = 512;
  go.max_num_seqs = 16;
  go.max_model_len = 1024;
  go.num_blocks_override = kNumBlocks;
  go.exact_router = exact_router;
  return go;
}

Pair load_pair(const std::string& dir, bool exact_router, bool with_eager = false) {
  Pair p;
  cpu::CpuModelOptions co;
  co.model_dir = dir;
  co.block_size = kBlockSize;
  co.num_blocks = kNumBlocks;
  p.cpu = cpu::load_cpu_model(co);
  cuda::CudaModelOptions go = gpu_options(dir, exact_router);
  p.gpu = cuda::load_cuda_model(go);
  if (with_eager) {
    go.enforce_eager = true;
    p.eager = cuda::load_cuda_model(go);
  }
  return p;
}

std::vector<std::vector<float>> full_prompts(Pair& p, const std::vector<std::vector<std::int32_t>>& ps, BlockPool& pool,
                                             const std::string& name, float tol) {
  std::vector<std::vector<std::uint32_t>> tables;
  std::vector<cpu::Chunk> chunks;
  for (const auto& ids : ps) tables.push_back(pool.take(ids.size()));
  for (std::size_t i = 0; i < ps.size(); ++i) chunks.push_back({ps[i], 0, tables[i], true});
  std::vector<const float*> got;
  auto ref = p.step(chunks, got);
  Stats s;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    s.add(ref[i], got[i], g_allow.empty() ? tol : g_allow[i]);
    if (!g_counted) {  // bisect: per prompt
      Stats one;
      one.add(ref[i], got[i], tol);
      std::printf("     prompt of %zu tokens: %.2f%%\n", ps[i].size(), 100 * one.max_rel);
    }
  }
  report(name + ": full prompts, one mixed step", s, tol);
  return ref;
}

// --rows: every chunked-prefill / decode row's max |dlogit| / max |logit| (which prompt, which position).
bool g_row_detail = false;
void row_detail(bool decoding, std::size_t prompt, std::size_t pos, const std::vector<float>& ref, const float* got) {
  Stats one;
  one.add(ref, got, 1.0f);
  std::printf("     row %s prompt %zu position %zu: %.2f%%%s\n", decoding ? "decode " : "prefill", prompt, pos,
              100 * one.max_rel, one.agree ? "" : " (argmax differs)");
}

// Chunked prefill interleaved with decode: each step gives every sequence its next <= 13 prompt tokens
// or, once its prompt is in, one decode token (the oracle's argmax), until each has 3 outputs; then 3 steps
// decode every sequence at once (decode-only steps of 5 rows: the padded decode graph of 8). The rows are
// those of 6 outputs in one phase (same tokens, same positions): only the batching differs.
void chunked_and_decode(Pair& p, const std::vector<std::vector<std::int32_t>>& ps, BlockPool& pool,
                        const std::string& name, float tol) {
  constexpr std::size_t kChunk = 13, kOutputs = 3, kTail = 3;
  std::vector<std::vector<std::int32_t>> seqs = ps;
  std::vector<std::vector<std::uint32_t>> tables;
  std::vector<std::size_t> done(ps.size(), 0);
  std::vector<std::int32_t> next(ps.size(), 0);  // the oracle's argmax after each sequence's last row
  std::size_t tail = 0;                          // kTail once the first phase is over
  for (const auto& ids : ps) tables.push_back(pool.take(ids.size() + kOutputs + kTail));
  Stats prefill, decode, decode_eager;
  int graph_rows = 0, identical = 0;
  float graph_vs_eager = 0;
  const std::int64_t graph_steps0 = p.gpu->graph_steps();
  for (int step = 0; step < 96; ++step) {
    std::vector<cpu::Chunk> chunks;
    std::vector<std::size_t> who;
    for (std::size_t i = 0; i < seqs.size(); ++i) {
      if (seqs[i].size() >= ps[i].size() + kOutputs + tail && done[i] == seqs[i].size()) continue;
      const std::size_t n = std::min(kChunk, seqs[i].size() - done[i]);
      chunks.push_back({std::span(seqs[i]).subspan(done[i], n), std::uint32_t(done[i]), tables[i],
                        done[i] + n == seqs[i].size()});
      who.push_back(i);
    }
    if (chunks.empty() && tail) break;
    if (chunks.empty()) {
      tail = kTail;
      for (std::size_t i = 0; i < seqs.size(); ++i) seqs[i].push_back(next[i]);
      continue;
    }
    std::vector<const float*> got, got_eager;
    auto ref = p.step(chunks, got, &got_eager);
    std::size_t r = 0;
    for (std::size_t c = 0; c < chunks.size(); ++c) {
      const std::size_t i = who[c];
      const bool decoding = done[i] >= ps[i].size();
      done[i] += chunks[c].tokens.size();
      if (!chunks[c].wants_logits) continue;
      (decoding ? decode : prefill).add(ref[r], got[r], g_allow.empty() ? tol : g_allow[i]);
      if (g_row_detail) row_detail(decoding, i, done[i], ref[r], got[r]);
      if (decoding && !got_eager.empty()) {
        decode_eager.add(ref[r], got_eager[r], g_allow.empty() ? tol : g_allow[i]);
        const std::size_t V = ref[r].size();
        float d = 0;
        for (std::size_t v = 0; v < V; ++v) d = std::max(d, std::abs(got[r][v] - got_eager[r][v]));
        graph_vs_eager = std::max(graph_vs_eager, d);
        identical += std::memcmp(got[r], got_eager[r], V * 4) == 0;
        ++graph_rows;
      }
      next[i] = std::int32_t(std::max_element(ref[r].begin(), ref[r].end()) - ref[r].begin());
      if (seqs[i].size() < ps[i].size() + kOutputs + tail) seqs[i].push_back(next[i]);
      ++r;
    }
  }
  report(name + ": chunked prefill (13-token chunks)", prefill, tol);
  const std::int64_t graph_steps = p.gpu->graph_steps() - graph_steps0;
  report(name + ": paged decode steps (graphs)", decode, tol);
  if (p.eager) {
    report(name + ": paged decode steps (eager)", decode_eager, tol);
    // The decode-only steps must have replayed graphs, or the line above checked the eager path twice.
    const bool ok = graph_steps > 0 && p.gpu->num_decode_graphs() > 0;
    if (!ok && g_counted) ++g_failures;
    std::printf("%s %-44s %lld decode steps replayed %d graphs; rows graph vs eager: %d/%d bit-identical, "
                "max|d| %.3g\n",
                !g_counted ? "INFO" : ok ? "PASS" : "FAIL", (name + ": decode graphs used").c_str(),
                (long long)graph_steps, p.gpu->num_decode_graphs(), identical, graph_rows, graph_vs_eager);
  }
}

// llama2.c's `run -t 0 -n steps`, teacher-forced: the prompt in one chunk, then one golden token per step; at
// every position our argmax must be llama2.c's next token, or within a near tie (its logit within tie_frac of
// the row's largest |logit| below our best: llama2.c runs float32 weights, ours are bf16). `same` is where a
// free-running greedy run would part from llama2.c's (the first disagreement); it must reach min_equal.
void stories_greedy(const std::string& root, const std::string& golden_file, std::size_t prompt_len,
                    std::size_t steps, std::size_t min_equal, float tie_frac) {
  cuda::CudaModelOptions go;
  go.model_dir = root + "/models/stories260K";
  go.block_size = 8;
  go.max_num_batched_tokens = 512;
  go.max_num_seqs = 4;
  go.max_model_len = 512;
  go.num_blocks_override = 64;
  auto m = cuda::load_cuda_model(go);
  const auto golden = read_ids(root + "/tests/data/stories260K/" + golden_file);
  std::vector<std::int32_t> ids(golden.begin(), golden.begin() + std::ptrdiff_t(prompt_len));
  std::vector<std::uint32_t> table;
  for (std::uint32_t b = 0; b * 8 < steps + 1; ++b) table.push_back(63 - b);
  std::size_t computed = 0, same = 0, ties = 0, wrong = 0;
  bool parted = false;
  std::vector<float> logits(m->config().vocab_size);
  while (ids.size() < std::min(steps + 1, golden.size())) {
    cuda::StepChunk c{std::span(ids).subspan(computed), std::uint32_t(computed), table, true};
    auto dl = m->forward(std::span(&c, 1));
    TROUPE_CUDA_CHECK(cudaStreamSynchronize(m->stream()));
    TROUPE_CUDA_CHECK(cudaMemcpy(logits.data(), dl.data, logits.size() * 4, cudaMemcpyDeviceToHost));
    computed = ids.size();
    const auto best = std::max_element(logits.begin(), logits.end());
    const std::int32_t want = golden[ids.size()];
    if (std::int32_t(best - logits.begin()) != want) {
      float amax = 0;
      for (float v : logits) amax = std::max(amax, std::fabs(v));
      (*best - logits[std::size_t(want)] <= tie_frac * amax ? ties : wrong)++;
      parted = true;
    }
    if (!parted) ++same;
    ids.push_back(want);
  }
  same += prompt_len;  // the prompt is equal by construction
  const bool ok = wrong == 0 && same >= std::min<std::size_t>(golden.size(), min_equal);
  if (!ok) ++g_failures;
  std::printf("%s stories260K greedy vs llama2.c %-26s first %zu/%zu tokens equal (need %zu); teacher-forced: %zu "
              "near ties (within %.0f%% of max|logit|), %zu other disagreements\n",
              ok ? "PASS" : "FAIL", golden_file.c_str(), same, golden.size(), std::min(golden.size(), min_equal), ties,
              100.0 * tie_frac, wrong);
}

// A copy of a checkpoint directory that runs only its first `layers` layers (config.json rewritten, the
// safetensors linked): --bisect uses it to find the first layer where the models part.
std::string truncated(const std::string& dir, int layers) {
  std::ifstream in(dir + "/config.json");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  const std::string key = "\"num_hidden_layers\":";
  auto at = text.find(key);
  if (at == std::string::npos) throw std::runtime_error("no num_hidden_layers in " + dir);
  auto end = text.find_first_of(",}", at);
  text.replace(at, end - at, key + " " + std::to_string(layers));
  const std::string out = "/tmp/troupe_check_" + std::to_string(std::hash<std::string>{}(dir)) + "_" + std::to_string(layers);
  std::filesystem::create_directories(out);
  std::ofstream(out + "/config.json") << text;
  std::filesystem::remove(out + "/model.safetensors");
  std::filesystem::create_symlink(std::filesystem::absolute(dir + "/model.safetensors"), out + "/model.safetensors");
  return out;
}

}  // namespace

int run_smoke(const std::string& dir, int l1, int l2, bool eager);  // smoke.cpp
std::vector<float> oracle_envelope(const std::string& dir, const std::vector<std::vector<std::int32_t>>& prompts,
                                   const std::vector<std::vector<float>>& ref, float eps, int seeds);  // envelope.cpp
// Relative noise of the envelope's perturbations: about two bf16 roundings; FP8 checkpoints also round the
// activations of every FP8 GEMM to e4m3 (up to 2^-4 relative, ~3.6% RMS), so they get 2%.
constexpr float kEnvelopeEps = 0.004f, kEnvelopeEpsFp8 = 0.02f;

namespace {

struct Case {
  std::string name, dir;
  float tol;
};

// The tiny DeepSeek checkpoints cut to 1, 2 and 3 layers, float32 router, random prompts: informational.
void run_bisect(const std::string& root) {
  g_counted = false;
  for (const char* name : {"v3_bf16", "v2_lite"})
    for (int layers : {1, 2, 3}) {
      try {
        const std::string dir = truncated(root + "/tests/data/deepseek_tiny/" + name, layers);
        Pair p = load_pair(dir, true);
        BlockPool pool;
        std::mt19937 rng(3);
        std::vector<std::vector<std::int32_t>> ps;
        for (int n : {1, 5, 17, 64, 120}) {
          ps.emplace_back();
          for (int i = 0; i < n; ++i) ps.back().push_back(std::int32_t(rng() % 512));
        }
        full_prompts(p, ps, pool, std::string(name) + " " + std::to_string(layers) + " layer(s)", 0.05f);
      } catch (const std::exception& e) {
        std::printf("FAIL bisect %s: %s\n", name, e.what());
      }
    }
  g_counted = true;
}

// Each prompt's allowance: the tolerance, or twice the oracle's own envelope (a fresh pair gives the
// unperturbed oracle's logits, so the checked pair's caches start clean).
void set_allowances(const Case& c, const std::string& name, bool exact, const std::vector<std::vector<std::int32_t>>& ps) {
  std::vector<std::vector<float>> ref;
  bool fp8 = false;
  {
    Pair q = load_pair(c.dir, exact);
    fp8 = q.gpu->config().fp8_block.has_value();
    BlockPool qpool;
    const bool counted = g_counted;
    g_counted = false;
    ref = full_prompts(q, ps, qpool, name + " (probe)", c.tol);
    g_counted = counted;
  }
  const float eps = fp8 ? kEnvelopeEpsFp8 : kEnvelopeEps;
  const auto env = oracle_envelope(c.dir, ps, ref, eps, 3);
  std::printf("     oracle envelope per prompt (norm weights x (1 + %.1f%% N(0,1)), 3 seeds):", 100 * eps);
  for (std::size_t i = 0; i < env.size(); ++i) {
    g_allow.push_back(std::max(c.tol, 2 * env[i]));
    std::printf(" %zu tok %.1f%%", ps[i].size(), 100 * env[i]);
  }
  std::printf("\n");
}

// One cuda/oracle pair through full prompts, chunked prefill and paged decode; `envelope`: per-prompt
// allowances from the oracle's own sensitivity (set_allowances) instead of the plain tolerance alone.
void run_pair(const Case& c, const std::string& name, bool exact, bool envelope) {
  try {
    Pair p = load_pair(c.dir, exact, /*with_eager=*/true);
    BlockPool pool;
    auto ps = prompts(c.dir, p.gpu->config().vocab_size);
    g_allow.clear();
    if (envelope) set_allowances(c, name, exact, ps);
    full_prompts(p, ps, pool, name, c.tol);
    chunked_and_decode(p, ps, pool, name, c.tol);
  } catch (const std::exception& e) {
    ++g_failures;
    std::printf("FAIL %s: %s\n", name.c_str(), e.what());
  }
  std::fflush(stdout);
}

// DeepSeek runs twice: with the float32 router (checked: the oracle's routing arithmetic) and with the
// production bf16 router GEMM (reported only).
void check_case(const Case& c) {
  const bool deepseek = c.name != "stories260K";
  for (bool exact : {true, false}) {
    if (!exact && !deepseek) continue;
    g_counted = exact;
    const std::string name = c.name + (deepseek ? (exact ? " f32-router" : " bf16-router") : "");
    run_pair(c, name, exact, /*envelope=*/deepseek);
  }
  g_counted = true;
}

// The wide-margin V3 pair (tests/data/deepseek_tiny/margin.py): transformers' float32 routing of these prompts
// and their 6 greedy tokens (the decode steps above) wins every decision (group and expert) by >= 0.05 of the selection score, while
// bf16 activations move a score by ~1e-3 (0.25 sigmoid slope x 0.4% of a unit logit) and FP8 ones by ~1e-2.
// So no route can flip, no envelope is needed, and both routers (float32 and the production bf16 GEMM, whose
// rounded weights move a score by ~5e-4) are held to the arithmetic tolerance. Each prompt's smallest margin
// is printed: a failing row whose prompt has a wide margin is a bug, not a flip.
void check_wide_margin(const Case& c) {
  Checkpoint g = Checkpoint::open(c.dir + "/golden.safetensors");
  std::printf("     %s: smallest route margin per prompt (2 MoE layers x (prompt + 6 greedy) tokens):", c.name.c_str());
  for (int i = 0; g.has("prompt." + std::to_string(i) + ".route_margin"); ++i) {
    const TensorView& t = g.tensor("prompt." + std::to_string(i) + ".route_margin");
    std::vector<float> m(std::size_t(t.numel()));
    std::memcpy(m.data(), t.data, m.size() * 4);
    std::printf(" %.3f (%zu)", *std::min_element(m.begin(), m.end()), m.size());
  }
  std::printf("\n");
  for (bool exact : {true, false}) {
    run_pair(c, c.name + (exact ? " f32-router" : " bf16-router"), exact, /*envelope=*/false);
  }
}

}  // namespace

int check_prompt_logprobs(const std::string& root);  // prompt_logprobs_check.cpp
void decode_consistency(const std::string& dir, const std::string& name);  // decode_consistency.cpp

int main(int argc, char** argv) {
  std::string root = ".";
  bool bisect = false;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--root" && i + 1 < argc) root = argv[i + 1];
    if (std::string(argv[i]) == "--bisect") bisect = true;
    if (std::string(argv[i]) == "--rows") g_row_detail = true;
    if (std::string(argv[i]) == "--smoke" && i + 3 < argc) {
      const bool eager = i + 4 < argc && std::string(argv[i + 4]) == "--eager";
      try {
        return run_smoke(argv[i + 1], std::atoi(argv[i + 2]), std::atoi(argv[i + 3]), eager);
      } catch (const std::exception& e) {
        std::printf("FAIL smoke %s: %s\n", argv[i + 1], e.what());
        return 1;
      }
    }
  }
  if (bisect) run_bisect(root);
  const std::vector<Case> cases = {
      {"stories260K", root + "/models/stories260K", 0.08f},
      {"v3_bf16", root + "/tests/data/deepseek_tiny/v3_bf16", 0.05f},
      {"v3_fp8", root + "/tests/data/deepseek_tiny/v3_fp8", 0.25f},
      // 8%, not 5%: make_tiny.py doubles q_proj / kv_a_proj (peaky attention, scores up to ~20), which turns bf16's
      // 2^-9 on q and k into ~4% on attention weights. Measured (decode_consistency.cpp): its rows reach 6.6% of
      // max|logit| in a single prefill too, and GPU decode vs GPU prefill differ by <= 0.34%: not the decode path.
      {"v2_lite", root + "/tests/data/deepseek_tiny/v2_lite", 0.08f},
  };
  for (const Case& c : cases) {
    g_near_tie = c.name == "v3_bf16" || c.name == "v3_fp8";
    check_case(c);
    g_near_tie = false;
  }
  for (const Case& c : {Case{"v3_margin_bf16", root + "/tests/data/deepseek_tiny/v3_margin_bf16", 0.05f},
                        Case{"v3_margin_fp8", root + "/tests/data/deepseek_tiny/v3_margin_fp8", 0.25f}})
    check_wide_margin(c);
  for (const char* name : {"v3_margin_bf16", "v3_margin_fp8", "v3_fp8", "v2_lite"}) {
    try {
      decode_consistency(root + "/tests/data/deepseek_tiny/" + name, name);
    } catch (const std::exception& e) {
      std::printf("INFO decode consistency %s: %s\n", name, e.what());
    }
  }
  try {
    g_failures += check_prompt_logprobs(root);
  } catch (const std::exception& e) {
    ++g_failures;
    std::printf("FAIL prompt_logprobs: %s\n", e.what());
  }
  try {
    stories_greedy(root, "golden_t0_n64_once_upon_a_time.ids", 5, 64, 65, 0.0f);
    stories_greedy(root, "golden_t0_n256_noprompt.ids", 1, 256, 150, 0.02f);
  } catch (const std::exception& e) {
    ++g_failures;
    std::printf("FAIL stories260K greedy: %s\n", e.what());
  }
  std::printf("%s: %d failure(s)\n", g_failures ? "FAILED" : "ALL PASSED", g_failures);
  return g_failures ? 1 : 0;
}
