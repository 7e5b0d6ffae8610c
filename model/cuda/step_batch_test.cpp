// The step packing of the cuda model: layout offsets, slot mapping through the block table, logits rows,
// and the errors a bad step gets before any kernel runs.
#define BOOST_TEST_MODULE step_batch
#include "model/cuda/step_batch.hpp"

#include <boost/test/unit_test.hpp>

#include <stdexcept>

using namespace troupe::cuda;

namespace {
StepLimits limits() {
  StepLimits l;
  l.vocab = 100;
  l.block_size = 4;
  l.num_blocks = 10;
  l.max_tokens = 64;
  l.max_seqs = 8;
  l.max_blocks_per_seq = 3;
  return l;
}
}  // namespace

BOOST_AUTO_TEST_CASE(packs_a_mixed_batch) {
  // seq 0: a 3-token chunk at positions 4..6 (blocks 7, 2); seq 1: one decode token at position 0 (block 9);
  // an empty chunk is skipped; seq 2: a prefill chunk that does not want logits.
  std::vector<std::int32_t> a = {11, 12, 13}, b = {21}, c = {31, 32};
  std::vector<std::uint32_t> ta = {7, 2}, tb = {9}, tc = {5};
  std::vector<StepChunk> chunks = {{a, 4, ta, true}, {b, 0, tb, true}, {{}, 0, {}, true}, {c, 0, tc, false}};
  std::vector<std::int32_t> out;
  StepLayout L = pack_step(chunks, limits(), out);
  BOOST_TEST(L.num_tokens == 6);
  BOOST_TEST(L.num_seqs == 3);
  BOOST_TEST(L.num_logits == 2);
  BOOST_TEST(L.max_seq_len == 7);
  auto at = [&](int off, int n) { return std::vector<std::int32_t>(out.begin() + off, out.begin() + off + n); };
  BOOST_TEST(at(L.tokens, 6) == std::vector<std::int32_t>({11, 12, 13, 21, 31, 32}));
  BOOST_TEST(at(L.token_seq, 6) == std::vector<std::int32_t>({0, 0, 0, 1, 2, 2}));
  BOOST_TEST(at(L.positions, 6) == std::vector<std::int32_t>({4, 5, 6, 0, 0, 1}));
  // position 4 -> block table[1] = 2, slot 0 -> 2*4+0 = 8
  BOOST_TEST(at(L.slot_mapping, 6) == std::vector<std::int32_t>({8, 9, 10, 36, 20, 21}));
  BOOST_TEST(at(L.seq_lens, 3) == std::vector<std::int32_t>({7, 1, 2}));
  BOOST_TEST(at(L.logits_rows, 2) == std::vector<std::int32_t>({2, 3}));
  BOOST_TEST(at(L.block_tables, 9) == std::vector<std::int32_t>({7, 2, 0, 9, 0, 0, 5, 0, 0}));
  BOOST_TEST(L.total == int(out.size()));
}

BOOST_AUTO_TEST_CASE(rejects_bad_steps) {
  std::vector<std::int32_t> ok = {1, 2}, bad = {1, 100};
  std::vector<std::uint32_t> t1 = {1}, t_out = {10}, t_long = {1, 2, 3, 4};
  std::vector<std::int32_t> out;
  std::vector<StepChunk> c1 = {{bad, 0, t1, true}};
  BOOST_CHECK_THROW(pack_step(c1, limits(), out), std::invalid_argument);  // token id past the vocabulary
  std::vector<StepChunk> c2 = {{ok, 3, t1, true}};
  BOOST_CHECK_THROW(pack_step(c2, limits(), out), std::invalid_argument);  // positions 3..4 need 2 blocks
  std::vector<StepChunk> c3 = {{ok, 0, t_out, true}};
  BOOST_CHECK_THROW(pack_step(c3, limits(), out), std::invalid_argument);  // block id out of range
  std::vector<StepChunk> c4 = {{ok, 11, t_long, true}};
  BOOST_CHECK_THROW(pack_step(c4, limits(), out), std::invalid_argument);  // past max-model-len
  std::vector<std::int32_t> many(65, 1);
  std::vector<std::uint32_t> tmany = {1, 2, 3};
  std::vector<StepChunk> c5 = {{many, 0, tmany, true}};
  BOOST_CHECK_THROW(pack_step(c5, limits(), out), std::invalid_argument);  // over max-num-batched-tokens
}
