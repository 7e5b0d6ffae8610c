// MLA decode (absorbed form, 512 + 64, block size 64) against the HBM roofline: the bytes that must move are
// each sequence's cached rows once (576 bf16 per position, whatever the head count) plus q and out.
#include "kernels/mla/mla.hpp"
#include "tools/kernel_bench/kernel_bench.hpp"

#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using namespace troupe::kernel_bench;

void ok(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(e));
}

template <class T>
void upload(const Buffer& b, const std::vector<T>& v) {
  ok(cudaMemcpy(b.as<void>(), v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice), "upload");
}

// `batch` decode tokens, each its own sequence of `len` cached positions; blocks handed out in a strided order
// so neighbouring blocks of one sequence are not neighbours in memory.
void decode_case(Bench& bench, int heads, int batch, int len) {
  constexpr int kLat = 512, kRope = 64, kBs = 64;
  const int blocks_per_seq = (len + kBs - 1) / kBs, num_blocks = blocks_per_seq * batch;
  std::vector<std::int32_t> tables(std::size_t(batch) * blocks_per_seq), token_seq(batch), positions(batch),
      slots(batch), seq_lens(batch, len);
  for (int s = 0; s < batch; ++s) {
    for (int b = 0; b < blocks_per_seq; ++b) tables[std::size_t(s) * blocks_per_seq + b] = b * batch + s;
    token_seq[s] = s, positions[s] = len - 1;
    slots[s] = tables[std::size_t(s) * blocks_per_seq + (len - 1) / kBs] * kBs + (len - 1) % kBs;
  }
  Buffer cache(std::size_t(num_blocks) * kBs * (kLat + kRope) * 2), q(std::size_t(batch) * heads * (kLat + kRope) * 2),
      out(std::size_t(batch) * heads * kLat * 2), d_tables(tables.size() * 4), d_seq(batch * 4), d_pos(batch * 4),
      d_slots(batch * 4), d_lens(batch * 4);
  fill_bf16(cache.as<void>(), std::size_t(num_blocks) * kBs * (kLat + kRope), -1.f, 1.f, 1);
  fill_bf16(q.as<void>(), std::size_t(batch) * heads * (kLat + kRope), -1.f, 1.f, 2);
  upload(d_tables, tables), upload(d_seq, token_seq), upload(d_pos, positions), upload(d_slots, slots);
  upload(d_lens, seq_lens);
  troupe::kernels::AttnBatch b;
  b.num_tokens = batch, b.num_seqs = batch;
  b.token_seq = d_seq.as<std::int32_t>(), b.positions = d_pos.as<std::int32_t>();
  b.slot_mapping = d_slots.as<std::int32_t>(), b.block_tables = d_tables.as<std::int32_t>();
  b.seq_lens = d_lens.as<std::int32_t>();
  b.max_blocks_per_seq = blocks_per_seq, b.block_size = kBs, b.max_seq_len = len;
  Buffer ws(troupe::kernels::mla_workspace_bytes(batch, heads, kLat, len, kBs));
  const double bytes = double(batch) * len * (kLat + kRope) * 2 + double(batch) * heads * (kLat + kRope + kLat) * 2;
  const double flops = 2.0 * batch * heads * len * (kLat + kRope + kLat);
  const std::string shape = "h" + std::to_string(heads) + " batch " + std::to_string(batch) + " x len " +
                            std::to_string(len);
  bench.time("mla_attention_absorbed", shape, bytes, flops, Peak::memory, [&](cudaStream_t s) {
    troupe::kernels::mla_attention_absorbed(q.as<__nv_bfloat16>(), heads, kLat, kRope, cache.as<__nv_bfloat16>(), b,
                                            0.0722f, ws.as<void>(), out.as<__nv_bfloat16>(), s);
  });
}

}  // namespace

// DeepSeek-R1 with TP 8: 16 heads per rank.
KERNEL_BENCH(mla_decode_tp8) {
  decode_case(bench, 16, 1, 4096);
  decode_case(bench, 16, 1, 32768);
  decode_case(bench, 16, 16, 4096);
  decode_case(bench, 16, 64, 4096);
  decode_case(bench, 16, 256, 2048);
}

// All 128 heads on one GPU (and V2-Lite's 16 heads are the TP8 case above).
KERNEL_BENCH(mla_decode_128_heads) {
  decode_case(bench, 128, 1, 4096);
  decode_case(bench, 128, 64, 2048);
}
