#define BOOST_TEST_MODULE llama_cpu
#include "model/cpu/llama.hpp"
#include "model/checkpoint/checkpoint_test_util.hpp"

#include <boost/test/unit_test.hpp>

#include <cmath>
#include <thread>

using namespace troupe;
using namespace troupe::cpu;

namespace {
ModelConfig tiny(Arch arch = Arch::llama) {
  ModelConfig c;
  c.arch = arch;
  c.architecture = arch == Arch::llama ? "LlamaForCausalLM" : "Qwen2ForCausalLM";
  c.vocab_size = 50;
  c.hidden_size = 32;
  c.intermediate_size = 40;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 8;
  c.attention_bias = arch == Arch::qwen2;
  c.rms_norm_eps = 1e-5;
  return c;
}

std::unique_ptr<LlamaModel> dummy(const ModelConfig& c, unsigned threads, std::uint32_t bs = 4) {
  auto w = WeightSource::dummy(7);
  return std::make_unique<LlamaModel>(c, w, bs, 32, threads);
}

const std::vector<std::int32_t> kSeq = {1, 5, 9, 13, 2, 44, 7, 30, 21, 3, 8};
}  // namespace

BOOST_AUTO_TEST_CASE(same_logits_for_any_thread_count) {
  auto a = dummy(tiny(), 1), b = dummy(tiny(), 3);
  std::vector<std::uint32_t> table = {0, 1, 2};
  Chunk c{kSeq, 0, table, true};
  auto la = a->forward(std::span(&c, 1)), lb = b->forward(std::span(&c, 1));
  BOOST_TEST(la == lb);  // bit for bit
}

BOOST_AUTO_TEST_CASE(chunked_prefill_and_mixed_batch_match_one_shot) {
  for (Arch arch : {Arch::llama, Arch::qwen2}) {
    auto one = dummy(tiny(arch), 2), split = dummy(tiny(arch), 2);
    std::vector<std::uint32_t> t1 = {0, 1, 2}, t2 = {9, 4, 7}, t3 = {20, 21, 22};
    Chunk whole{kSeq, 0, t1, true};
    auto want = one->forward(std::span(&whole, 1))[0];
    // Step 1: the first 5 tokens of sequence A (no logits) with the 3 first tokens of sequence B.
    std::span<const std::int32_t> seq(kSeq);
    Chunk s1[] = {{seq.subspan(0, 5), 0, t2, false}, {seq.subspan(0, 3), 0, t3, true}};
    BOOST_TEST(split->forward(s1).size() == 1u);
    // Step 2: the rest of A, and B's decode token.
    Chunk s2[] = {{seq.subspan(5), 5, t2, true}, {seq.subspan(3, 1), 3, t3, true}};
    auto got = split->forward(s2);
    BOOST_REQUIRE(got.size() == 2u);
    float err = 0;
    for (std::size_t i = 0; i < want.size(); ++i) err = std::max(err, std::abs(want[i] - got[0][i]));
    BOOST_TEST(err < 1e-5f);
  }
}

BOOST_AUTO_TEST_CASE(bad_inputs_are_refused) {
  auto m = dummy(tiny(), 1);
  std::vector<std::uint32_t> table = {0};
  std::vector<std::int32_t> bad = {99};
  Chunk c{bad, 0, table, true};
  BOOST_CHECK_THROW(m->forward(std::span(&c, 1)), std::invalid_argument);
  Chunk too_long{kSeq, 0, table, true};  // 11 tokens, one 4-token block
  BOOST_CHECK_THROW(m->forward(std::span(&too_long, 1)), std::invalid_argument);
  auto deepseek = tiny();
  deepseek.arch = Arch::deepseek_v3;
  BOOST_CHECK_THROW(dummy(deepseek, 1), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(rope_frequencies) {
  auto c = tiny();
  c.head_dim = 4;
  c.rope_theta = 10000;
  auto f = llama_inv_freq(c);
  BOOST_TEST(f.size() == 2u);
  BOOST_TEST(f[0] == 1.0f);
  BOOST_TEST(f[1] == 0.01f, boost::test_tools::tolerance(1e-6f));
  // Llama-3.1 scaling: wavelengths above old_len/low_freq_factor are divided by factor, below
  // old_len/high_freq_factor kept, in between smoothed.
  c.head_dim = 128;
  c.rope_theta = 500000;
  c.rope_scaling.type = "llama3";
  c.rope_scaling.factor = 8;
  c.rope_scaling.original_max_position_embeddings = 8192;
  auto plain = c;
  plain.rope_scaling.type.clear();
  auto s = llama_inv_freq(c), p = llama_inv_freq(plain);
  BOOST_TEST(s[0] == p[0]);                                           // wavelength 2*pi: high frequency
  BOOST_TEST(s[63] == p[63] / 8, boost::test_tools::tolerance(1e-6f));  // longest wavelength
  int mid = 0;
  for (int i = 0; i < 64; ++i) mid += (s[i] != p[i] && std::abs(s[i] - p[i] / 8) > 1e-9f * p[i]) ? 1 : 0;
  BOOST_TEST(mid > 0);
}

BOOST_AUTO_TEST_CASE(dummy_weights_are_seeded) {
  auto a = dummy_values(1, "w", 1000, 0.02f), b = dummy_values(1, "w", 1000, 0.02f), c = dummy_values(2, "w", 1000, 0.02f);
  BOOST_TEST(a == b);
  BOOST_TEST(a != c);
  double s2 = 0;
  for (float v : a) s2 += double(v) * v;
  BOOST_TEST(std::sqrt(s2 / 1000) == 0.02, boost::test_tools::tolerance(0.1));
}

BOOST_AUTO_TEST_CASE(loads_a_checkpoint_and_refuses_a_wrong_shape) {
  testing::TempDir dir;
  auto c = tiny();
  c.num_hidden_layers = 1;
  c.tie_word_embeddings = true;
  std::vector<testing::Entry> es;
  auto add = [&](const std::string& n, std::vector<std::int64_t> shape) {
    std::size_t k = 1;
    for (auto d : shape) k *= std::size_t(d);
    es.push_back(testing::f32_entry(n, shape, dummy_values(3, n, k, 0.02f)));
  };
  add("model.embed_tokens.weight", {50, 32});
  add("model.norm.weight", {32});
  std::string p = "model.layers.0.";
  for (auto n : {"input_layernorm.weight", "post_attention_layernorm.weight"}) add(p + n, {32});
  add(p + "self_attn.q_proj.weight", {32, 32});
  add(p + "self_attn.k_proj.weight", {16, 32});
  add(p + "self_attn.v_proj.weight", {16, 32});
  add(p + "self_attn.o_proj.weight", {32, 32});
  add(p + "mlp.gate_proj.weight", {40, 32});
  add(p + "mlp.up_proj.weight", {40, 32});
  add(p + "mlp.down_proj.weight", {40, 32});  // transposed on purpose
  testing::write_safetensors(dir.path + "/model.safetensors", es);
  auto w = WeightSource::checkpoint(dir.path);
  try {
    LlamaModel m(c, w, 4, 4, 1);
    BOOST_FAIL("a misshapen down_proj was accepted");
  } catch (const CheckpointError& e) {
    BOOST_TEST(std::string(e.what()).find("mlp.down_proj.weight' has shape [40, 32], expected [32, 40]") !=
               std::string::npos);
  }
}

// The in-memory all-reduce: every rank gets the rank-ordered sum; a rank that never comes is an error,
// not a hang.
BOOST_AUTO_TEST_CASE(cpu_group_all_reduce) {
  auto g = CpuGroup::join(0x5eed, 3);
  BOOST_TEST(CpuGroup::join(0x5eed, 3) == g);
  std::vector<std::vector<float>> bufs = {{1, 2}, {10, 20}, {100, 200}};
  for (int round = 0; round < 3; ++round) {  // the barriers are reusable step after step
    std::vector<std::thread> ranks;
    for (std::uint32_t r = 0; r < 3; ++r) ranks.emplace_back([&, r] { g->all_reduce_sum(r, bufs[r].data(), 2); });
    for (auto& t : ranks) t.join();
  }
  for (auto& b : bufs) BOOST_TEST((b == std::vector<float>{999, 1998}));  // 111 -> 333 -> 999
  CpuGroup lonely(2, std::chrono::seconds(1));
  float x = 1;
  BOOST_CHECK_THROW(lonely.all_reduce_sum(0, &x, 1), std::runtime_error);
}

// Tensor parallelism: each rank holds its heads and MLP columns; the all-reduced result matches the
// whole model (up to summation order) and is bitwise the same on every rank.
BOOST_AUTO_TEST_CASE(tensor_parallel_shards_match_the_whole_model) {
  const std::vector<std::uint32_t> table = {0, 1, 2};
  const Chunk chunk{kSeq, 0, table, true};
  for (Arch arch : {Arch::llama, Arch::qwen2}) {
    auto c = tiny(arch);
    auto whole = dummy(c, 1)->forward(std::span(&chunk, 1))[0];
    auto group = std::make_shared<CpuGroup>(2);
    std::vector<std::vector<float>> got(2);
    std::vector<std::thread> ranks;
    for (std::uint32_t r = 0; r < 2; ++r)
      ranks.emplace_back([&, r] {
        auto w = WeightSource::dummy(7);
        LlamaModel m(c, w, 4, 32, 1, TensorParallel{r, group});
        got[r] = m.forward(std::span(&chunk, 1))[0];
      });
    for (auto& t : ranks) t.join();
    BOOST_TEST(got[0] == got[1]);
    for (std::size_t i = 0; i < whole.size(); ++i) BOOST_REQUIRE_SMALL(got[0][i] - whole[i], 1e-5f);
  }
  // From a checkpoint (stories260K): the slices are cut from the mapping at load time.
  CpuModelOptions o;
  o.model_dir = std::string(TROUPE_SOURCE_DIR) + "/models/stories260K";
  o.block_size = 4;
  o.num_blocks = 32;
  o.threads = 1;
  auto whole_model = load_cpu_model(o);
  auto whole = whole_model->forward(std::span(&chunk, 1))[0];
  auto group = std::make_shared<CpuGroup>(2);
  std::vector<std::vector<float>> got(2);
  std::vector<std::thread> ranks;
  for (std::uint32_t r = 0; r < 2; ++r)
    ranks.emplace_back([&, r] {
      CpuModelOptions ro = o;
      ro.tp = TensorParallel{r, group};
      got[r] = load_cpu_model(ro)->forward(std::span(&chunk, 1))[0];
    });
  for (auto& t : ranks) t.join();
  BOOST_TEST(got[0] == got[1]);
  for (std::size_t i = 0; i < whole.size(); ++i) BOOST_REQUIRE_SMALL(got[0][i] - whole[i], 1e-4f);
  auto odd = tiny();
  odd.intermediate_size = 41;
  auto w = WeightSource::dummy(7);
  BOOST_CHECK_THROW(LlamaModel(odd, w, 4, 32, 1, TensorParallel{0, std::make_shared<CpuGroup>(2)}), CheckpointError);
}

// CpuModel rows with all_logits (prompt logprobs) mixed with chunks that want only their last row, for
// Llama and for DeepSeek through the adapter: the rows come in chunk order and equal a one-shot forward's.
BOOST_AUTO_TEST_CASE(all_logits_rows_in_a_mixed_batch) {
  std::vector<std::string> dirs = {std::string(TROUPE_SOURCE_DIR) + "/models/stories260K",
                                   std::string(TROUPE_SOURCE_DIR) + "/tests/data/deepseek_tiny/v2_lite"};
  for (const auto& dir : dirs) {
    BOOST_TEST_CONTEXT(dir) {
      CpuModelOptions o;
      o.model_dir = dir;
      o.block_size = 4;
      o.num_blocks = 16;
      o.threads = 1;
      auto m = load_cpu_model(o), ref = load_cpu_model(o);
      const std::size_t V = m->config().vocab_size;
      const std::vector<std::int32_t> a = {1, 45, 300, 21, 9}, b = {1, 17, 2};
      const std::vector<std::uint32_t> ta = {0, 1}, tb = {2};
      std::vector<Chunk> batch = {{b, 0, tb, true, false}, {a, 0, ta, true, true}, {b, 0, {}, false, false}};
      batch[2].tokens = {};  // an empty chunk gives no rows
      auto rows = m->forward(batch);
      BOOST_REQUIRE_EQUAL(rows.size(), 1u + a.size());
      std::vector<Chunk> alone = {{a, 0, ta, true, true}};
      auto want = ref->forward(alone);
      for (std::size_t i = 0; i < a.size(); ++i)
        for (std::size_t v = 0; v < V; ++v) BOOST_REQUIRE_SMALL(rows[1 + i][v] - want[i][v], 1e-4f);
      std::vector<Chunk> last = {{b, 0, tb, true, false}};
      BOOST_TEST(ref->forward(last)[0].size() == V);
    }
  }
}
