// The decode graphs' planning: vLLM's capture sizes, context buckets, and the padded step layout (padding
// rows never write the cache, real rows and their logits rows are kept).
#define BOOST_TEST_MODULE decode_graph_plan
#include "model/cuda/decode_graph_plan.hpp"

#include <boost/test/unit_test.hpp>

#include <stdexcept>

using namespace troupe::cuda;

BOOST_AUTO_TEST_CASE(batch_sizes_follow_vllm) {
  const std::vector<int> full = decode_graph_batch_sizes(256);
  BOOST_TEST(full.size() == 35u);
  BOOST_TEST(full[0] == 1);
  BOOST_TEST(full[3] == 8);
  BOOST_TEST(full[4] == 16);
  BOOST_TEST(full.back() == 256);
  BOOST_TEST(decode_graph_batch_sizes(1000).back() == 256);
  BOOST_TEST(decode_graph_batch_sizes(16) == (std::vector<int>{1, 2, 4, 8, 16}));
  BOOST_TEST(decode_graph_batch_sizes(20) == (std::vector<int>{1, 2, 4, 8, 16, 20}));
  BOOST_TEST(decode_graph_batch_sizes(3) == (std::vector<int>{1, 2, 3}));
  BOOST_TEST(decode_graph_batch_sizes(1) == (std::vector<int>{1}));
}

BOOST_AUTO_TEST_CASE(context_buckets_double_up_to_max_model_len) {
  BOOST_TEST(decode_graph_context_buckets(4096) == (std::vector<int>{256, 512, 1024, 2048, 4096}));
  BOOST_TEST(decode_graph_context_buckets(3000) == (std::vector<int>{256, 512, 1024, 2048, 3000}));
  BOOST_TEST(decode_graph_context_buckets(100) == (std::vector<int>{100}));
  const auto b = decode_graph_context_buckets(4096);
  BOOST_TEST(smallest_at_least(b, 1) == 256);
  BOOST_TEST(smallest_at_least(b, 257) == 512);
  BOOST_TEST(smallest_at_least(b, 4096) == 4096);
  BOOST_TEST(smallest_at_least(b, 4097) == 0);
  BOOST_TEST(smallest_at_least(decode_graph_batch_sizes(256), 9) == 16);
}

BOOST_AUTO_TEST_CASE(padding_rows_skip_the_cache_and_keep_real_rows) {
  StepLimits lim;
  lim.vocab = 100;
  lim.block_size = 4;
  lim.num_blocks = 10;
  lim.max_tokens = 64;
  lim.max_seqs = 8;
  lim.max_blocks_per_seq = 3;
  const std::vector<std::int32_t> t0{7}, t1{9};
  const std::vector<std::uint32_t> b0{5, 2}, b1{8};
  const std::vector<StepChunk> chunks = {{t0, 5, b0, true}, {t1, 2, b1, false}};
  std::vector<std::int32_t> packed, out;
  const StepLayout L = pack_step(chunks, lim, packed);
  const StepLayout P = pad_decode_step(packed, L, 4, 3, out);
  BOOST_TEST(P.num_tokens == 4);
  BOOST_TEST(P.num_seqs == 4);
  BOOST_TEST(P.num_logits == 1);
  BOOST_TEST(P.max_seq_len == 6);
  BOOST_TEST(P.total == 6 * 4 + 4 * 3);
  BOOST_TEST(out.size() == std::size_t(P.total));
  // real rows: tokens, positions, slots (block_table[pos / 4] * 4 + pos % 4), seq_lens, block tables
  BOOST_TEST(out[P.tokens + 0] == 7);
  BOOST_TEST(out[P.tokens + 1] == 9);
  BOOST_TEST(out[P.positions + 0] == 5);
  BOOST_TEST(out[P.positions + 1] == 2);
  BOOST_TEST(out[P.slot_mapping + 0] == 2 * 4 + 1);
  BOOST_TEST(out[P.slot_mapping + 1] == 8 * 4 + 2);
  BOOST_TEST(out[P.seq_lens + 0] == 6);
  BOOST_TEST(out[P.seq_lens + 1] == 3);
  BOOST_TEST(out[P.logits_rows + 0] == 0);
  BOOST_TEST(out[P.block_tables + 0] == 5);
  BOOST_TEST(out[P.block_tables + 1] == 2);
  BOOST_TEST(out[P.block_tables + 3] == 8);
  for (int i = 0; i < 4; ++i) BOOST_TEST(out[P.token_seq + i] == i);
  // padding rows: own sequence, position 0, no cache write, one key, block 0
  for (int i = 2; i < 4; ++i) {
    BOOST_TEST(out[P.tokens + i] == 0);
    BOOST_TEST(out[P.positions + i] == 0);
    BOOST_TEST(out[P.slot_mapping + i] == -1);
    BOOST_TEST(out[P.seq_lens + i] == 1);
    for (int b = 0; b < 3; ++b) BOOST_TEST(out[P.block_tables + i * 3 + b] == 0);
  }
}

BOOST_AUTO_TEST_CASE(empty_step_is_all_padding_and_bad_steps_are_refused) {
  std::vector<std::int32_t> out;
  const StepLayout P = pad_decode_step({}, StepLayout{}, 2, 3, out);
  BOOST_TEST(P.num_logits == 0);
  BOOST_TEST(out[P.slot_mapping] == -1);
  BOOST_TEST(out[P.slot_mapping + 1] == -1);
  StepLimits lim;
  lim.vocab = 100;
  lim.block_size = 4;
  lim.num_blocks = 10;
  lim.max_tokens = 64;
  lim.max_seqs = 8;
  lim.max_blocks_per_seq = 3;
  const std::vector<std::int32_t> two{1, 2};
  const std::vector<std::uint32_t> blocks{1};
  const std::vector<StepChunk> prefill = {{two, 0, blocks, true}};
  std::vector<std::int32_t> packed;
  const StepLayout L = pack_step(prefill, lim, packed);
  BOOST_CHECK_THROW(pad_decode_step(packed, L, 4, 3, out), std::invalid_argument);  // not decode-only
  const std::vector<std::int32_t> one{1};
  const std::vector<StepChunk> d = {{one, 0, blocks, true}, {one, 1, blocks, true}};
  const StepLayout L2 = pack_step(d, lim, packed);
  BOOST_CHECK_THROW(pad_decode_step(packed, L2, 1, 3, out), std::invalid_argument);  // batch too small
}
