// Tensor-parallel DeepSeek on the cpu backend: every rank loads only its shard at load time (heads,
// MLP columns, experts), and with the in-memory all-reduce the ranks' logits equal one rank's within
// float rounding, on the tiny V3 (bf16 and FP8: o_proj's column split cuts through 128x128 scale blocks
// at tp=4) and V2-Lite checkpoints, over a prefill and paged decode steps.
//
// Tolerance: only the summation order changes (partial sums per rank, then the reduce), ~1e-6 relative
// per layer; kTol = 1e-4 of the logits' std leaves 10x headroom under the transformers comparison's 1e-3,
// while a wrong slice (a head's rows off by one unit, a missing expert) moves logits by 1e-2..1 of it.
#define BOOST_TEST_MODULE deepseek_tp
#include <boost/test/unit_test.hpp>

#include "model/checkpoint/checkpoint.hpp"
#include "model/config/model_config.hpp"
#include "model/cpu/deepseek.hpp"

#include <cmath>
#include <map>
#include <numeric>
#include <thread>

using namespace troupe;
using namespace troupe::cpu;

namespace {

constexpr double kTol = 1e-4;
const std::string kDir = std::string(TROUPE_SOURCE_DIR) + "/tests/data/deepseek_tiny/";
constexpr std::uint32_t kBlockSize = 8, kNumBlocks = 16;

// Two sequences: a prefill (every token's logits), then 3 decode steps that feed back argmax tokens.
std::vector<float> run(DeepseekCpuModel& m) {
  std::vector<std::vector<std::int32_t>> seqs = {{0, 17, 300, 42, 9, 77, 123, 5, 61, 2, 480}, {0, 250, 3}};
  std::vector<std::vector<std::uint32_t>> tables = {{3, 9}, {12}};
  std::vector<float> all;
  std::vector<std::uint32_t> done(2, 0);
  for (int step = 0; step < 4; ++step) {
    std::vector<SeqChunk> batch;
    for (std::size_t s = 0; s < 2; ++s)
      batch.push_back({std::span(seqs[s]).subspan(done[s]), done[s], tables[s]});
    auto out = m.forward(batch, {.all_logits = step == 0});
    for (std::size_t s = 0; s < 2; ++s) {
      all.insert(all.end(), out[s].begin(), out[s].end());
      done[s] = std::uint32_t(seqs[s].size());
      auto last = out[s].end() - std::ptrdiff_t(m.config().vocab_size);
      seqs[s].push_back(std::int32_t(std::max_element(last, out[s].end()) - last));
    }
  }
  return all;
}

// Runs every rank on its own thread (they meet in the all-reduce) and returns each rank's logits.
std::vector<std::vector<float>> run_tp(const ModelConfig& c, const Checkpoint& ck, std::uint32_t world,
                                       std::vector<std::vector<std::pair<std::string, std::vector<std::int64_t>>>>* shapes = nullptr) {
  auto group = std::make_shared<CpuGroup>(world, std::chrono::seconds(120));
  std::vector<std::vector<float>> out(world);
  if (shapes) shapes->resize(world);
  std::vector<std::string> errors(world);
  std::vector<std::thread> ranks;
  for (std::uint32_t r = 0; r < world; ++r)
    ranks.emplace_back([&, r] {
      try {
        DeepseekCpuModel m(c, ck, kBlockSize, kNumBlocks, 1, TensorParallel{r, world > 1 ? group : nullptr});
        if (shapes) (*shapes)[r] = m.held_shapes();
        out[r] = run(m);
      } catch (const std::exception& e) {
        errors[r] = e.what();
      }
    });
  for (auto& t : ranks) t.join();
  for (auto& e : errors) BOOST_REQUIRE_MESSAGE(e.empty(), e);
  return out;
}

double worst_rel(const std::vector<float>& got, const std::vector<float>& want) {
  double m = std::accumulate(want.begin(), want.end(), 0.0) / double(want.size()), var = 0, worst = 0;
  for (float x : want) var += (x - m) * (x - m);
  double sd = std::sqrt(var / double(want.size()));
  for (std::size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::abs(double(got[i]) - want[i]) / sd);
  return worst;
}

std::map<std::string, std::vector<std::int64_t>> by_name(const std::vector<std::pair<std::string, std::vector<std::int64_t>>>& v) {
  return {v.begin(), v.end()};
}

void check_split(const std::string& name) {
  ModelConfig c = load_model_config(kDir + name);
  Checkpoint ck = Checkpoint::open(kDir + name + "/model.safetensors");
  auto one = run_tp(c, ck, 1)[0];
  for (std::uint32_t world : {2u, 4u}) {
    auto ranks = run_tp(c, ck, world);
    double err = worst_rel(ranks[0], one);
    std::printf("%-8s tp=%u vs tp=1: max|diff|/std = %.3g\n", name.c_str(), world, err);
    BOOST_CHECK_LT(err, kTol);
    for (std::uint32_t r = 1; r < world; ++r) BOOST_CHECK(ranks[r] == ranks[0]);  // bitwise: same reduce order
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(v3_bf16_tp_matches_one_rank) { check_split("v3_bf16"); }
BOOST_AUTO_TEST_CASE(v3_fp8_tp_matches_one_rank) { check_split("v3_fp8"); }
BOOST_AUTO_TEST_CASE(v2_lite_tp_matches_one_rank) { check_split("v2_lite"); }

// Each rank holds exactly its part: whole heads of q_b / kv_b rows and o_proj columns, MLP rows/columns,
// its experts only; embeddings, norms, router and latent projections whole.
BOOST_AUTO_TEST_CASE(shard_shapes) {
  ModelConfig c = load_model_config(kDir + "v3_bf16");  // 4 heads, qk 96, v 64, 12 experts, I 384, moe I 64
  Checkpoint ck = Checkpoint::open(kDir + "v3_bf16/model.safetensors");
  std::vector<std::vector<std::pair<std::string, std::vector<std::int64_t>>>> shapes;
  run_tp(c, ck, 4, &shapes);
  using S = std::vector<std::int64_t>;
  for (std::uint32_t r = 0; r < 4; ++r) {
    auto s = by_name(shapes[r]);
    BOOST_TEST_CONTEXT("rank " << r) {
      BOOST_TEST((s.at("model.embed_tokens.weight") == S{512, 256}));
      BOOST_TEST((s.at("model.layers.0.self_attn.q_a_proj.weight") == S{192, 256}));
      BOOST_TEST((s.at("model.layers.0.self_attn.q_b_proj.weight") == S{96, 192}));       // 1 head of 96
      BOOST_TEST((s.at("model.layers.0.self_attn.kv_a_proj_with_mqa.weight") == S{160, 256}));
      BOOST_TEST((s.at("model.layers.0.self_attn.kv_b_proj.weight") == S{128, 128}));    // 1 head: 64 + 64
      BOOST_TEST((s.at("model.layers.0.self_attn.o_proj.weight") == S{256, 64}));        // 1 head's columns
      BOOST_TEST((s.at("model.layers.0.mlp.gate_proj.weight") == S{96, 256}));           // 384 / 4
      BOOST_TEST((s.at("model.layers.0.mlp.down_proj.weight") == S{256, 96}));
      BOOST_TEST((s.at("model.layers.1.mlp.gate.weight") == S{12, 256}));                // router whole
      BOOST_TEST((s.at("model.layers.1.mlp.shared_experts.up_proj.weight") == S{16, 256}));
      BOOST_TEST((s.at("model.layers.1.mlp.shared_experts.down_proj.weight") == S{256, 16}));
      for (std::uint32_t e = 0; e < 12; ++e) {
        bool mine = e / 3 == r;  // 3 experts per rank, contiguous
        BOOST_TEST(s.count("model.layers.2.mlp.experts." + std::to_string(e) + ".gate_proj.weight") == std::size_t(mine));
      }
      BOOST_TEST((s.at("model.layers.2.mlp.experts." + std::to_string(3 * r) + ".down_proj.weight") == S{256, 64}));
    }
  }
}

BOOST_AUTO_TEST_CASE(uneven_split_is_refused_by_name) {
  ModelConfig c = load_model_config(kDir + "v2_lite");
  Checkpoint ck = Checkpoint::open(kDir + "v2_lite/model.safetensors");
  auto group = std::make_shared<CpuGroup>(3);
  try {
    DeepseekCpuModel m(c, ck, kBlockSize, kNumBlocks, 1, TensorParallel{0, group});
    BOOST_FAIL("tp=3 over 4 heads was accepted");
  } catch (const CheckpointError& e) {
    BOOST_TEST(std::string(e.what()).find("num_attention_heads") != std::string::npos);
  }
}
