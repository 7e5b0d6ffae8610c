// Golden tests of the DeepSeek cpu reference against transformers' logits on tiny random checkpoints
// (tests/data/deepseek_tiny, written by make_tiny.py): full prompts, mixed batches, chunked prefill and
// paged decode over block tables with holes; plus the absorbed/naive MLA agreement and thread-count
// independence.
//
// Tolerance: max |engine - golden| over all compared logits, relative to the golden logits' std.
// Both sides are float32 from identical weights; only summation order differs (torch's blocked GEMMs vs.
// our 8-lane dots, absorbed vs. decompressed attention), which leaves ~1e-6 relative per op and
// ~1e-5 after 3 layers. kTol = 1e-3 keeps 100x headroom over that, while any real error (wrong RoPE pair,
// wrong mscale, a flipped expert, a stale cache row) moves logits by 1e-2..1 of their std.
#define BOOST_TEST_MODULE deepseek_cpu
#include <boost/test/unit_test.hpp>

#include "model/checkpoint/checkpoint.hpp"
#include "model/config/model_config.hpp"
#include "model/cpu/deepseek.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>
#include <string>
#include <vector>

using namespace troupe;
using namespace troupe::cpu;

namespace {

constexpr double kTol = 1e-3;
const std::string kDir = std::string(TROUPE_SOURCE_DIR) + "/tests/data/deepseek_tiny/";

struct Prompt {
  std::vector<std::int32_t> tokens;
  std::vector<float> logits;  // [n, vocab]
};

struct Tiny {
  ModelConfig config;
  Checkpoint ckpt;
  std::vector<Prompt> prompts;
};

Tiny load_tiny(const std::string& name) {
  Tiny t{load_model_config(kDir + name), Checkpoint::open(kDir + name + "/model.safetensors"), {}};
  Checkpoint golden = Checkpoint::open(kDir + name + "/golden.safetensors");
  for (int i = 0; golden.has("prompt." + std::to_string(i) + ".tokens"); ++i) {
    const TensorView& tok = golden.tensor("prompt." + std::to_string(i) + ".tokens");
    Prompt p;
    p.tokens.resize(tok.numel());
    std::copy_n(reinterpret_cast<const std::int32_t*>(tok.data), tok.numel(), p.tokens.data());
    p.logits = to_f32(golden.tensor("prompt." + std::to_string(i) + ".logits"));
    t.prompts.push_back(std::move(p));
  }
  BOOST_REQUIRE_GE(t.prompts.size(), 3u);
  return t;
}

double stddev(const std::vector<float>& v) {
  double m = std::accumulate(v.begin(), v.end(), 0.0) / v.size(), s = 0;
  for (float x : v) s += (x - m) * (x - m);
  return std::sqrt(s / v.size());
}

// Tracks the worst relative error over many comparisons.
struct ErrorMeter {
  double worst = 0;
  void compare(const float* got, const float* want, std::size_t n, double scale) {
    for (std::size_t i = 0; i < n; ++i) worst = std::max(worst, std::abs(double(got[i]) - want[i]) / scale);
  }
};

// Hands out block ids in a shuffled order with every third id skipped, so tables are non-contiguous
// and have holes.
struct BlockPool {
  std::vector<std::uint32_t> free;
  explicit BlockPool(std::uint32_t n, unsigned seed) {
    for (std::uint32_t i = 0; i < n; ++i)
      if (i % 3 != 1) free.push_back(i);
    std::shuffle(free.begin(), free.end(), std::mt19937(seed));
  }
  void grow(std::vector<std::uint32_t>& table, std::size_t tokens, std::uint32_t block_size) {
    while (table.size() * block_size < tokens) {
      BOOST_REQUIRE(!free.empty());
      table.push_back(free.back());
      free.pop_back();
    }
  }
};

constexpr std::uint32_t kBlockSize = 16, kNumBlocks = 96;

// Runs every prompt as its own sequence through a schedule of steps. `chunk(seq, done)` gives how many
// tokens sequence `seq` computes in the next step; all sequences with tokens left share each step.
// Every chunk's logits are compared with the golden rows of its positions.
template <class ChunkFn>
double run_schedule(Tiny& t, ChunkFn chunk, AttentionForm form, unsigned threads = 0) {
  DeepseekCpuModel model(t.config, t.ckpt, kBlockSize, kNumBlocks, threads);
  const std::size_t V = t.config.vocab_size, S = t.prompts.size();
  BlockPool pool(kNumBlocks, 7);
  std::vector<std::vector<std::uint32_t>> tables(S);
  std::vector<std::size_t> done(S, 0);
  ErrorMeter err;
  for (;;) {
    std::vector<SeqChunk> batch;
    std::vector<std::size_t> who;
    for (std::size_t s = 0; s < S; ++s) {
      const auto& toks = t.prompts[s].tokens;
      if (done[s] == toks.size()) continue;
      const std::size_t n = std::min(chunk(s, done[s]), toks.size() - done[s]);
      pool.grow(tables[s], done[s] + n, kBlockSize);
      batch.push_back({std::span(toks).subspan(done[s], n), std::uint32_t(done[s]), tables[s]});
      who.push_back(s);
    }
    if (batch.empty()) break;
    const auto out = model.forward(batch, {.all_logits = true, .attention = form});
    for (std::size_t k = 0; k < batch.size(); ++k) {
      const Prompt& p = t.prompts[who[k]];
      const std::size_t n = batch[k].tokens.size();
      BOOST_REQUIRE_EQUAL(out[k].size(), n * V);
      err.compare(out[k].data(), p.logits.data() + done[who[k]] * V, n * V, stddev(p.logits));
      done[who[k]] += n;
    }
  }
  return err.worst;
}

double full_prompts(Tiny& t, AttentionForm form) {
  return run_schedule(t, [](std::size_t, std::size_t) { return std::size_t(1) << 20; }, form);
}

// Prefill in uneven chunks (7, 13, 7, 13, ...): chunk boundaries fall inside and across blocks.
double chunked_prefill(Tiny& t) {
  return run_schedule(t, [](std::size_t s, std::size_t done) { return std::size_t((done / 7 + s) % 2 ? 13 : 7); },
                      AttentionForm::absorbed);
}

// A prefill of part of the prompt, then one token per step. The longest prompt prefills in chunks of 30
// meanwhile, so its chunks share steps with the other sequences' single decode tokens.
double paged_decode(Tiny& t) {
  const std::size_t last = t.prompts.size() - 1;
  return run_schedule(t,
                      [last](std::size_t s, std::size_t done) -> std::size_t {
                        if (s == last && done < 90) return 30;
                        return done == 0 ? 3 + 11 * s : 1;
                      },
                      AttentionForm::absorbed);
}

void report(const std::string& what, double err) {
  std::printf("%-40s max|diff|/std = %.3g\n", what.c_str(), err);
  BOOST_CHECK_LT(err, kTol);
}

}  // namespace

BOOST_AUTO_TEST_CASE(v3_bf16_matches_transformers) {
  Tiny t = load_tiny("v3_bf16");
  BOOST_REQUIRE(t.config.arch == Arch::deepseek_v3 && t.config.q_lora_rank);
  report("v3_bf16 full prompts (absorbed)", full_prompts(t, AttentionForm::absorbed));
  report("v3_bf16 full prompts (naive)", full_prompts(t, AttentionForm::naive));
  report("v3_bf16 chunked prefill", chunked_prefill(t));
  report("v3_bf16 paged decode", paged_decode(t));
}

BOOST_AUTO_TEST_CASE(v3_fp8_matches_transformers) {
  Tiny t = load_tiny("v3_fp8");
  BOOST_REQUIRE(t.config.fp8_block.has_value());
  BOOST_REQUIRE(t.ckpt.tensor("model.layers.1.self_attn.kv_b_proj.weight").dtype == DType::f8_e4m3);
  report("v3_fp8 full prompts (absorbed)", full_prompts(t, AttentionForm::absorbed));
  report("v3_fp8 chunked prefill", chunked_prefill(t));
  report("v3_fp8 paged decode", paged_decode(t));
}

// The wide-margin pair (margin.py: v3_bf16's weights, routers re-fitted so every route of the golden prompts
// wins by >= 0.05): the GPU check's V3 checkpoints; here the oracle must match transformers on them too.
BOOST_AUTO_TEST_CASE(v3_margin_matches_transformers) {
  for (const char* name : {"v3_margin_bf16", "v3_margin_fp8"}) {
    Tiny t = load_tiny(name);
    BOOST_REQUIRE(t.config.arch == Arch::deepseek_v3 && t.config.n_group > 1);
    const std::string n(name);
    report(n + " full prompts (absorbed)", full_prompts(t, AttentionForm::absorbed));
    report(n + " chunked prefill", chunked_prefill(t));
    report(n + " paged decode", paged_decode(t));
  }
}

BOOST_AUTO_TEST_CASE(v2_lite_matches_transformers) {
  Tiny t = load_tiny("v2_lite");
  BOOST_REQUIRE(t.config.arch == Arch::deepseek_v2 && !t.config.q_lora_rank);
  report("v2_lite full prompts (absorbed)", full_prompts(t, AttentionForm::absorbed));
  report("v2_lite full prompts (naive)", full_prompts(t, AttentionForm::naive));
  report("v2_lite chunked prefill", chunked_prefill(t));
  report("v2_lite paged decode", paged_decode(t));
}

BOOST_AUTO_TEST_CASE(absorbed_and_naive_agree) {
  Tiny t = load_tiny("v3_bf16");
  const Prompt& p = t.prompts.back();
  std::vector<std::uint32_t> table(kNumBlocks);
  std::iota(table.rbegin(), table.rend(), 0u);  // blocks in reverse order
  std::vector<float> got[2];
  for (int form = 0; form < 2; ++form) {
    DeepseekCpuModel model(t.config, t.ckpt, kBlockSize, kNumBlocks);
    SeqChunk c{p.tokens, 0, table};
    got[form] = model.forward(std::span(&c, 1), {.all_logits = true, .attention = AttentionForm(form)})[0];
  }
  ErrorMeter err;
  err.compare(got[0].data(), got[1].data(), got[0].size(), stddev(p.logits));
  report("absorbed vs naive", err.worst);
}

BOOST_AUTO_TEST_CASE(results_do_not_depend_on_thread_count) {
  Tiny t = load_tiny("v3_bf16");
  std::vector<std::vector<float>> runs;
  for (unsigned threads : {1u, 2u, 5u}) {
    DeepseekCpuModel model(t.config, t.ckpt, kBlockSize, kNumBlocks, threads);
    std::vector<std::uint32_t> a = {4, 9, 1, 30, 22, 17, 8, 2}, b = {40, 41, 3};
    std::vector<SeqChunk> batch = {{t.prompts[4].tokens, 0, a}, {t.prompts[2].tokens, 0, b}};
    auto out = model.forward(batch, {.all_logits = true});
    runs.push_back(out[0]);
    runs.back().insert(runs.back().end(), out[1].begin(), out[1].end());
  }
  BOOST_CHECK(runs[0] == runs[1]);
  BOOST_CHECK(runs[0] == runs[2]);
}

BOOST_AUTO_TEST_CASE(last_token_logits_and_bad_input) {
  Tiny t = load_tiny("v2_lite");
  DeepseekCpuModel model(t.config, t.ckpt, kBlockSize, kNumBlocks, 2);
  const Prompt& p = t.prompts[2];
  std::vector<std::uint32_t> table = {5, 6};
  SeqChunk c{p.tokens, 0, table};
  auto out = model.forward(std::span(&c, 1));
  BOOST_REQUIRE_EQUAL(out[0].size(), t.config.vocab_size);
  ErrorMeter err;
  err.compare(out[0].data(), p.logits.data() + (p.tokens.size() - 1) * t.config.vocab_size, t.config.vocab_size,
              stddev(p.logits));
  BOOST_CHECK_LT(err.worst, kTol);
  SeqChunk pair[2] = {{std::span<const std::int32_t>(), 0, table}, {p.tokens, 0, table}};
  DeepseekCpuModel fresh(t.config, t.ckpt, kBlockSize, kNumBlocks, 2);
  auto with_empty = fresh.forward(pair);
  BOOST_CHECK(with_empty[0].empty());
  BOOST_CHECK(with_empty[1] == out[0]);
  std::vector<std::uint32_t> short_table = {5};
  SeqChunk too_long{p.tokens, 0, short_table};
  BOOST_CHECK_THROW(model.forward(std::span(&too_long, 1)), std::invalid_argument);
  std::vector<std::uint32_t> bad_block = {5, kNumBlocks};
  SeqChunk bad{p.tokens, 0, bad_block};
  BOOST_CHECK_THROW(model.forward(std::span(&bad, 1)), std::invalid_argument);
  std::vector<std::int32_t> bad_tok = {std::int32_t(t.config.vocab_size)};
  SeqChunk oov{bad_tok, 0, table};
  BOOST_CHECK_THROW(model.forward(std::span(&oov, 1)), std::invalid_argument);
}

// Hand-worked routing cases for the paths the golden checkpoints do not cover or only cover statistically.
BOOST_AUTO_TEST_CASE(routing_by_hand) {
  ModelConfig c;
  c.arch = Arch::deepseek_v2;
  c.n_routed_experts = 8;
  c.num_experts_per_tok = 2;
  c.n_group = 4;  // groups {0,1} {2,3} {4,5} {6,7}
  c.topk_group = 1;
  c.scoring_func = "softmax";
  c.routed_scaling_factor = 16;
  const float logits[8] = {3, 0, 2.9f, 2.8f, 0, 0, 0, 0};
  c.topk_method = "greedy";  // the two best overall
  BOOST_CHECK((route_token(c, logits, nullptr).expert == std::vector<std::uint32_t>{0, 2}));
  c.topk_method = "group_limited_greedy";  // best group by max is {0,1}: expert 1 beats expert 2
  Route r = route_token(c, logits, nullptr);
  BOOST_CHECK((r.expert == std::vector<std::uint32_t>{0, 1}));
  double z = 0;
  for (float l : logits) z += std::exp(l);
  BOOST_CHECK_CLOSE(r.weight[0], 16 * std::exp(3.0) / z, 1e-4);  // softmax score * factor, no renormalizing

  // V3: 2 groups of 4, one kept; the bias decides selection, the unbiased sigmoid gives the weights.
  c.arch = Arch::deepseek_v3;
  c.scoring_func = "sigmoid";
  c.topk_method = "noaux_tc";
  c.n_group = 2;
  c.norm_topk_prob = true;
  c.routed_scaling_factor = 2.5;
  const float v3_logits[8] = {0, 0, 0.1f, 0, 0, 1, 0, 0};
  const float bias[8] = {0, 2, 0, 0, 0, 0, 0, 0};
  // group 0: top-2 of (0.5, 2.5, 0.525, 0.5) = 3.025 beats group 1: 0.731 + 0.5
  r = route_token(c, v3_logits, bias);
  BOOST_CHECK((r.expert == std::vector<std::uint32_t>{1, 2}));
  const double s1 = 0.5, s2 = 1 / (1 + std::exp(-0.1));
  BOOST_CHECK_CLOSE(r.weight[0], 2.5 * s1 / (s1 + s2), 1e-4);
  BOOST_CHECK_CLOSE(r.weight[1], 2.5 * s2 / (s1 + s2), 1e-4);
}

// load-format dummy: no checkpoint is read, FP8 configs get float32 weights directly, and the seed alone
// decides the logits (which stay finite and of a sensible size: N(0, 0.02) weights, unit norms).
BOOST_AUTO_TEST_CASE(dummy_weights_need_no_checkpoint) {
  for (const char* name : {"v3_bf16", "v3_fp8", "v2_lite"}) {
    BOOST_TEST_CONTEXT(name) {
      ModelConfig c = load_model_config(kDir + name);
      const std::vector<std::int32_t> toks{1, 5, 9, 200};
      const std::vector<std::uint32_t> table{0};
      auto logits = [&](std::uint64_t seed) {
        auto w = WeightSource::dummy(seed);
        DeepseekCpuModel m(c, w, kBlockSize, 2, 2);
        std::vector<SeqChunk> chunks{{toks, 0, table}};
        return m.forward(chunks)[0];
      };
      auto a = logits(3), b = logits(3), other = logits(4);
      BOOST_REQUIRE_EQUAL(a.size(), c.vocab_size);
      BOOST_TEST(a == b);
      BOOST_TEST(a != other);
      for (float x : a) BOOST_REQUIRE(std::isfinite(x));
      BOOST_TEST(stddev(a) > 1e-4);
      BOOST_TEST(stddev(a) < 10.0);
    }
  }
}
