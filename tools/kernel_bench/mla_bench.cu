// MLA decode (absorbed form, 512 + 64, block size 64) against the HBM roofline: the bytes that must move are
// each sequence's cached rows once (576 bf16 per position, whatever the head count) plus q and out; at decode
// sizes also the fused W_UV after it and the fused W_UK + rope before it (mla_absorb.hpp), plus their weights.
// MLA prefill (V3 dims) against the bf16 tensor peak: the non-absorbed path (gather + kv_b expansion GEMM +
// mla_prefill_attention, and the attention kernel alone) next to the absorbed kernel on the same chunks.
// FLOPs: 2 x (qk + v) per head per unmasked (query, key) pair (+ the expansion GEMM for the whole path);
// the absorbed row counts its own 2 x (576 + 512) per pair.
#include "kernels/gemm/gemm.hpp"
#include "kernels/mla/mla.hpp"
#include "kernels/mla/mla_absorb.hpp"
#include "kernels/mla/mla_prefill.hpp"
#include "kernels/mla/mla_prefill_plan.hpp"
#include "tools/kernel_bench/kernel_bench.hpp"

#include <algorithm>
#include <cmath>
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
  constexpr int kLat = 512, kRope = 64, kBs = 64, kNope = 128, kV = 128;
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
  if (!troupe::kernels::mla_absorb_fits(batch, kLat, kRope, kNope, kV)) return;
  // Decode sizes: the fused per-head projections (mla_absorb.hpp) on R1's kv_b layout; bytes add W_UK or W_UV.
  Buffer kv_b(std::size_t(heads) * (kNope + kV) * kLat * 2), attn(std::size_t(batch) * heads * kV * 2),
      q_in(std::size_t(batch) * heads * (kNope + kRope) * 2), cos_sin(std::size_t(len) * kRope * 4);
  fill_bf16(kv_b.as<void>(), std::size_t(heads) * (kNope + kV) * kLat, -0.1f, 0.1f, 3);
  fill_bf16(q_in.as<void>(), std::size_t(batch) * heads * (kNope + kRope), -1.f, 1.f, 4);
  fill_f32(cos_sin.as<float>(), std::size_t(len) * kRope, -1.f, 1.f, 5);
  const double w_bytes = double(heads) * kV * kLat * 2;  // W_UK and W_UV are the same size
  troupe::kernels::MlaUvOut uv;
  uv.kv_b = kv_b.as<__nv_bfloat16>(), uv.nope = kNope, uv.v_dim = kV, uv.out = attn.as<__nv_bfloat16>();
  bench.time("mla_attention_absorbed + W_UV", shape, bytes + w_bytes, flops + 2.0 * batch * heads * kV * kLat,
             Peak::memory, [&](cudaStream_t s) {
               troupe::kernels::mla_attention_absorbed(q.as<__nv_bfloat16>(), heads, kLat, kRope,
                                                       cache.as<__nv_bfloat16>(), b, 0.0722f, ws.as<void>(),
                                                       out.as<__nv_bfloat16>(), s, &uv);
             });
  bench.time("mla_absorb_q (W_UK + rope)", shape, w_bytes + double(batch) * heads * (kNope + kLat + 2 * kRope) * 2,
             2.0 * batch * heads * kNope * kLat, Peak::memory, [&](cudaStream_t s) {
               troupe::kernels::mla_absorb_q(q_in.as<__nv_bfloat16>(), batch, heads, kNope, kRope, kV,
                                             kv_b.as<__nv_bfloat16>(), kLat, d_pos.as<std::int32_t>(),
                                             cos_sin.as<float>(), true, q.as<__nv_bfloat16>(), s);
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

namespace {

struct PrefillShape {
  int ctx, n_q;  // one chunk: queries at the last n_q of ctx positions
};

// The chunks of one step through both MLA forms (V3 dims: latent 512, rope 64, nope 128, v 128; block size 64).
void prefill_case(Bench& bench, int heads, const std::vector<PrefillShape>& chunks, const std::string& shape,
                  int tile_q = troupe::kernels::kMlaPrefillTileQ) {
  namespace tk = troupe::kernels;
  constexpr int kLat = 512, kRope = 64, kNope = 128, kV = 128, kQk = kNope + kRope, kBs = 64;
  int max_blocks = 0, num_blocks = 0, T = 0;
  for (const auto& c : chunks) max_blocks = std::max(max_blocks, (c.ctx + kBs - 1) / kBs), T += c.n_q;
  std::vector<std::int32_t> tables, token_seq, positions;
  std::vector<tk::MlaPrefillChunk> pcs;
  double pairs = 0, keys = 0;
  for (std::size_t s = 0; s < chunks.size(); ++s) {
    const auto& c = chunks[s];
    for (int b = 0; b < max_blocks; ++b) tables.push_back(b < (c.ctx + kBs - 1) / kBs ? num_blocks++ : -1);
    pcs.push_back({int(token_seq.size()), c.n_q, c.ctx - c.n_q, int(s)});
    for (int i = 0; i < c.n_q; ++i) {
      token_seq.push_back(int(s)), positions.push_back(c.ctx - c.n_q + i);
      pairs += c.ctx - c.n_q + i + 1;
    }
    keys += c.ctx;
  }
  const tk::MlaPrefillPlan plan = tk::plan_mla_prefill(pcs, 16384, tile_q);
  int rows = 0;
  for (const auto& p : plan.pieces) rows = std::max(rows, p.rows);
  Buffer cache(std::size_t(num_blocks) * kBs * (kLat + kRope) * 2), kvb(std::size_t(heads) * (kNope + kV) * kLat * 2),
      q(std::size_t(T) * heads * kQk * 2), qlat(std::size_t(T) * heads * (kLat + kRope) * 2),
      out(std::size_t(T) * heads * kLat * 2), lat(std::size_t(rows) * kLat * 2), kpe(std::size_t(rows) * kRope * 2),
      kv(std::size_t(rows) * heads * (kNope + kV) * 2), lse(std::size_t(T) * heads * 4), d_tables(tables.size() * 4),
      d_seq(token_seq.size() * 4), d_pos(positions.size() * 4), d_segs(plan.segs.size() * sizeof(tk::MlaPrefillSeg)),
      d_tiles(plan.tiles.size() * 4);
  fill_bf16(cache.as<void>(), std::size_t(num_blocks) * kBs * (kLat + kRope), -1.f, 1.f, 3);
  fill_bf16(kvb.as<void>(), std::size_t(heads) * (kNope + kV) * kLat, -0.07f, 0.07f, 4);
  fill_bf16(q.as<void>(), std::size_t(T) * heads * kQk, -1.f, 1.f, 5);
  fill_bf16(qlat.as<void>(), std::size_t(T) * heads * (kLat + kRope), -1.f, 1.f, 6);
  upload(d_tables, tables), upload(d_seq, token_seq), upload(d_pos, positions), upload(d_segs, plan.segs);
  upload(d_tiles, plan.tiles);
  tk::AttnBatch b;
  b.num_tokens = T, b.num_seqs = int(chunks.size());
  b.token_seq = d_seq.as<std::int32_t>(), b.positions = d_pos.as<std::int32_t>();
  b.block_tables = d_tables.as<std::int32_t>(), b.max_blocks_per_seq = max_blocks, b.block_size = kBs;
  for (const auto& c : chunks) b.max_seq_len = std::max(b.max_seq_len, c.ctx);
  tk::Gemm gemm;
  const tk::MlaPrefillDims dims{heads, kNope, kRope, kV};
  const auto* segs = d_segs.as<tk::MlaPrefillSeg>();
  const double attn_flops = 2.0 * (kQk + kV) * pairs * heads;
  const double exp_flops = 2.0 * keys * heads * (kNope + kV) * kLat;
  const double scale = 1.0 / std::sqrt(double(kQk));
  const std::string hs = "h" + std::to_string(heads) + " " + shape + " tile " + std::to_string(tile_q);
  bench.time("mla_prefill (gather+kv_b+attn)", hs, 0, attn_flops + exp_flops, Peak::bf16, [&](cudaStream_t s) {
    for (const auto& p : plan.pieces) {
      tk::mla_prefill_gather(cache.as<__nv_bfloat16>(), kLat, kRope, b, segs + p.seg0, p.num_segs, p.rows,
                             lat.as<__nv_bfloat16>(), kpe.as<__nv_bfloat16>(), s);
      gemm.bf16(lat.as<__nv_bfloat16>(), kvb.as<__nv_bfloat16>(), kv.as<void>(), tk::OutType::bf16, p.rows,
                heads * (kNope + kV), kLat, s);
      tk::mla_prefill_attention(q.as<__nv_bfloat16>(), dims, kv.as<__nv_bfloat16>(), kpe.as<__nv_bfloat16>(), segs,
                                d_tiles.as<std::int32_t>() + p.tile0, p.num_tiles, tile_q, float(scale),
                                lse.as<float>(), out.as<__nv_bfloat16>(), s);
    }
  });
  const auto& last = plan.pieces.back();
  const bool was = tk::mla_prefill_use_wgmma(false);  // the mma.sync kernel first
  bench.time("mla_prefill_attention", hs, 0, attn_flops, Peak::bf16, [&](cudaStream_t s) {
    tk::mla_prefill_attention(q.as<__nv_bfloat16>(), dims, kv.as<__nv_bfloat16>(), kpe.as<__nv_bfloat16>(), segs,
                              d_tiles.as<std::int32_t>() + last.tile0, last.num_tiles, tile_q, float(scale),
                              lse.as<float>(), out.as<__nv_bfloat16>(), s);
  });
  if (tile_q == 128) {  // the wgmma kernel (mla_prefill_wgmma.cuh) on the same tiles
    tk::mla_prefill_use_wgmma(true);
    bench.time("mla_prefill_attention (wgmma)", hs, 0, attn_flops, Peak::bf16, [&](cudaStream_t s) {
      tk::mla_prefill_attention(q.as<__nv_bfloat16>(), dims, kv.as<__nv_bfloat16>(), kpe.as<__nv_bfloat16>(), segs,
                                d_tiles.as<std::int32_t>() + last.tile0, last.num_tiles, tile_q, float(scale),
                                lse.as<float>(), out.as<__nv_bfloat16>(), s);
    });
  }
  tk::mla_prefill_use_wgmma(was);
  if (tile_q != troupe::kernels::kMlaPrefillTileQ) return;  // the absorbed row once per shape
  Buffer ws(tk::mla_workspace_bytes(T, heads, kLat, b.max_seq_len, kBs));
  const double absorbed_flops = 2.0 * (kLat + kRope + kLat) * pairs * heads;
  bench.time("mla_attention_absorbed (before)", "h" + std::to_string(heads) + " " + shape, 0, absorbed_flops,
             Peak::bf16, [&](cudaStream_t s) {
               tk::mla_attention_absorbed(qlat.as<__nv_bfloat16>(), heads, kLat, kRope, cache.as<__nv_bfloat16>(), b,
                                          float(scale), ws.as<void>(), out.as<__nv_bfloat16>(), s);
             });
}

}  // namespace

// R1 on one GPU (128 heads): a 4096-token prompt, and a 1024-token chunk after a 3072-token prefix.
KERNEL_BENCH(mla_prefill_r1) {
  for (int tile : {64, 128}) {
    prefill_case(bench, 128, {{4096, 4096}}, "1 x 4096", tile);
    prefill_case(bench, 128, {{4096, 1024}}, "1024 after 3072", tile);
  }
}

// V2-Lite (16 heads): 8 prompts of 1000 tokens in one step.
KERNEL_BENCH(mla_prefill_v2_lite) {
  for (int tile : {64, 128}) prefill_case(bench, 16, std::vector<PrefillShape>(8, {1000, 1000}), "8 x 1000", tile);
}
