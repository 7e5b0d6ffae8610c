// Non-absorbed MLA prefill (kernels/mla/mla_prefill.hpp) end to end: gather of the cached latents, the kv_b
// expansion through Gemm::bf16 and the attention kernel, against a float64 host reference of the model's
// attention for every query of the prefill chunks (model/cpu/mla.cpp's arithmetic: K_h = [c W_UK_h^T | k_pe],
// V_h = c W_UV_h^T, softmax(q K^T * scale) V over positions <= the query's).
//
// Sweep: several chunks of different lengths in one launch, chunks after a prefix already in the cache,
// shuffled block tables with holes, the three (nope, rope, v) instantiations, pieces smaller than a context
// (the lse merge), and step rows that are not prefill (interleaved "decode" rows): their out rows must stay
// untouched.
//
// Tolerance |got - want| <= 5e-3 + 1e-2 |want|. The expansion's output is bf16 by design (as in vLLM), so
// the reference rounds the expanded K / V to bf16 too and keeps everything else in float64; what remains is
// P rounded to bf16 before P V (<= 2^-9 relative of |o|), the bf16 output and, across pieces, one bf16
// rounding of the partial output per merge: ~2e-3 each. A wrong mask or a missed key moves outputs by 1e-1.
#include "kernels/gemm/gemm.hpp"
#include "kernels/mla/mla_prefill.hpp"
#include "kernels/mla/mla_prefill_plan.hpp"
#include "tests/kernels/kernel_test.hpp"
#include "tests/kernels/mla_moe_util.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace {

using namespace troupe::kernel_test;
using troupe::kernels::AttnBatch;
namespace tk = troupe::kernels;

struct ChunkSpec {
  int ctx;    // tokens in the cache after the step
  int n_q;    // query tokens (the last n_q positions); 0: a "decode" row of the step that prefill skips
};

struct PrefillScenario {
  int nope, rope, v, latent, heads, block_size, piece_rows;
  float scale;
  std::vector<ChunkSpec> chunks;
  int tile_q = 64;
};

void run_prefill(const char* what, const PrefillScenario& sc, unsigned seed) {
  std::mt19937 rng(seed);
  const int qk = sc.nope + sc.rope, width = sc.latent + sc.rope, H = sc.heads, bs = sc.block_size;
  const int S = int(sc.chunks.size());
  // Block tables from a shuffled pool twice the size needed (holes), one trailing -1 entry never read.
  int max_blocks = 0, need = 0;
  for (const ChunkSpec& c : sc.chunks) {
    max_blocks = std::max(max_blocks, (c.ctx + bs - 1) / bs);
    need += (c.ctx + bs - 1) / bs;
  }
  max_blocks += 1;
  const int num_blocks = 2 * need + 3;
  std::vector<int> pool(num_blocks);
  std::iota(pool.begin(), pool.end(), 0);
  std::shuffle(pool.begin(), pool.end(), rng);
  std::vector<std::int32_t> tables(std::size_t(S) * max_blocks, -1);
  for (int s = 0, next = 0; s < S; ++s)
    for (int b = 0; b < (sc.chunks[s].ctx + bs - 1) / bs; ++b) tables[std::size_t(s) * max_blocks + b] = pool[next++];
  auto slot = [&](int s, int pos) { return tables[std::size_t(s) * max_blocks + pos / bs] * bs + pos % bs; };

  // Step rows: each prefill chunk's queries, a decode row (n_q == 0) is one row prefill must not write.
  std::vector<tk::MlaPrefillChunk> pcs;
  int T = 0;
  for (int s = 0; s < S; ++s) {
    const ChunkSpec& c = sc.chunks[s];
    if (c.n_q > 0) pcs.push_back({T, c.n_q, c.ctx - c.n_q, s});
    T += std::max(c.n_q, 1);
  }
  const std::vector<float> cache = random_bf16(rng, std::size_t(num_blocks) * bs * width, -1.f, 1.f);
  const float wr = 1.7f / std::sqrt(float(sc.latent));
  const std::vector<float> kvb = random_bf16(rng, std::size_t(H) * (sc.nope + sc.v) * sc.latent, -wr, wr);
  const std::vector<float> q = random_bf16(rng, std::size_t(T) * H * qk, -1.f, 1.f);

  const tk::MlaPrefillPlan plan = tk::plan_mla_prefill(pcs, sc.piece_rows, sc.tile_q);
  int max_rows = 0;
  for (const auto& p : plan.pieces) max_rows = std::max(max_rows, p.rows);
  DevBuf<__nv_bfloat16> d_cache(to_bf16(cache)), d_kvb(to_bf16(kvb)), d_q(to_bf16(q));
  DevBuf<__nv_bfloat16> d_lat(std::size_t(max_rows) * sc.latent), d_kpe(std::size_t(max_rows) * sc.rope),
      d_kv(std::size_t(max_rows) * H * (sc.nope + sc.v)), d_out(std::size_t(T) * H * sc.v);
  DevBuf<float> d_lse(std::size_t(T) * H);
  DevBuf<std::int32_t> d_tables(tables), d_tiles(plan.tiles);
  DevBuf<tk::MlaPrefillSeg> d_segs(plan.segs);
  const float sentinel = 7.0f;  // out rows prefill must leave alone
  d_out.upload(to_bf16(std::vector<float>(d_out.n, sentinel)));
  AttnBatch b;
  b.block_tables = d_tables.p, b.max_blocks_per_seq = max_blocks, b.block_size = bs;
  tk::Gemm gemm;
  const tk::MlaPrefillDims dims{H, sc.nope, sc.rope, sc.v};
  for (const auto& p : plan.pieces) {
    tk::mla_prefill_gather(d_cache.p, sc.latent, sc.rope, b, d_segs.p + p.seg0, p.num_segs, p.rows, d_lat.p,
                           d_kpe.p, nullptr);
    gemm.bf16(d_lat.p, d_kvb.p, d_kv.p, tk::OutType::bf16, p.rows, H * (sc.nope + sc.v), sc.latent, nullptr);
    tk::mla_prefill_attention(d_q.p, dims, d_kv.p, d_kpe.p, d_segs.p, d_tiles.p + p.tile0, p.num_tiles, sc.tile_q,
                              sc.scale, d_lse.p, d_out.p, nullptr);
  }
  cuda_ok(cudaDeviceSynchronize(), what);

  // Reference: per chunk, per head, expanded K / V of every context position (rounded to bf16), then attention.
  std::vector<float> want(d_out.n, sentinel);
  std::vector<double> kh, vh, p;
  for (const tk::MlaPrefillChunk& c : pcs) {
    const int ctx = c.pos0 + c.n_q;
    for (int h = 0; h < H; ++h) {
      kh.assign(std::size_t(ctx) * qk, 0.0), vh.assign(std::size_t(ctx) * sc.v, 0.0);
      for (int j = 0; j < ctx; ++j) {
        const float* row = cache.data() + std::size_t(slot(c.seq, j)) * width;
        for (int i = 0; i < sc.nope + sc.v; ++i) {
          const float* w = kvb.data() + (std::size_t(h) * (sc.nope + sc.v) + i) * sc.latent;
          double d = 0;
          for (int l = 0; l < sc.latent; ++l) d += double(row[l]) * w[l];
          const double r = bf16_round(float(d));
          if (i < sc.nope) kh[std::size_t(j) * qk + i] = r;
          else vh[std::size_t(j) * sc.v + i - sc.nope] = r;
        }
        for (int i = 0; i < sc.rope; ++i) kh[std::size_t(j) * qk + sc.nope + i] = row[sc.latent + i];
      }
      for (int i = 0; i < c.n_q; ++i) {
        const int t = c.t0 + i, n = c.pos0 + i + 1;
        const float* qh = q.data() + (std::size_t(t) * H + h) * qk;
        p.assign(n, 0.0);
        double mx = -INFINITY, sum = 0;
        for (int j = 0; j < n; ++j) {
          double d = 0;
          for (int e = 0; e < qk; ++e) d += double(qh[e]) * kh[std::size_t(j) * qk + e];
          mx = std::max(mx, p[j] = d * sc.scale);
        }
        for (double& x : p) sum += (x = std::exp(x - mx));
        for (int e = 0; e < sc.v; ++e) {
          double o = 0;
          for (int j = 0; j < n; ++j) o += p[j] * vh[std::size_t(j) * sc.v + e];
          want[(std::size_t(t) * H + h) * sc.v + e] = float(o / sum);
        }
      }
    }
  }
  check_close(what, from_bf16(d_out.download()), want, 5e-3f, 1e-2f);
}

}  // namespace

KERNEL_TEST(mla_prefill_plan_pieces) {
  // 3000-key context over 2048-row pieces: two segments, first/last flags, buffer rows restart per piece.
  const tk::MlaPrefillPlan p = tk::plan_mla_prefill({{0, 1000, 2000, 0}, {1000, 800, 0, 1}}, 2048);
  bool ok = p.pieces.size() == 2 && p.segs.size() == 3;
  ok = ok && p.segs[0].k_lo == 0 && p.segs[0].k_hi == 2048 && p.segs[0].flags == tk::kMlaSegFirst;
  ok = ok && p.segs[1].k_lo == 2048 && p.segs[1].k_hi == 3000 && p.segs[1].buf0 == 0;
  ok = ok && p.segs[1].flags == tk::kMlaSegLast;
  ok = ok && p.segs[2].buf0 == 952 && p.segs[2].flags == (tk::kMlaSegFirst | tk::kMlaSegLast);
  ok = ok && p.pieces[1].rows == 1752;
  check(ok, "plan_mla_prefill: segments and pieces");
}

// The mma.sync kernel; its 128-row tiles of DeepSeek's dims go to the wgmma one by default (mla_prefill_wgmma).
KERNEL_TEST(mla_prefill_v3_dims) {
  const std::vector<ChunkSpec> mix = {{300, 300}, {1, 0}, {1000, 200}, {77, 77}, {50, 0}, {129, 65}, {64, 64}};
  const bool was = tk::mla_prefill_use_wgmma(false);
  run_prefill("128/64/128 lat512 h4 bs64 one piece", {128, 64, 128, 512, 4, 64, 1 << 20, 0.12f, mix}, 11);
  run_prefill("128/64/128 lat512 h4 bs16 pieces of 256", {128, 64, 128, 512, 4, 16, 256, 0.12f, mix}, 12);
  run_prefill("128/64/128 lat512 h2 bs64 pieces of 100, peaky", {128, 64, 128, 512, 2, 64, 100, 0.3f,
                                                                  {{700, 700}, {5, 5}, {3, 0}, {190, 1}}}, 13);
  run_prefill("128/64/128 lat512 h4 bs16 tiles of 128", {128, 64, 128, 512, 4, 16, 1 << 20, 0.12f, mix, 128}, 14);
  run_prefill("128/64/128 lat512 h4 bs64 tiles of 128, pieces of 300", {128, 64, 128, 512, 4, 64, 300, 0.12f, mix, 128},
              15);
  tk::mla_prefill_use_wgmma(was);
}

KERNEL_TEST(mla_prefill_tiny_dims) {
  const std::vector<ChunkSpec> mix = {{13, 13}, {50, 13}, {1, 0}, {200, 150}, {120, 120}, {7, 0}, {65, 2}};
  run_prefill("64/32/64 lat128 h4 bs16", {64, 32, 64, 128, 4, 16, 1 << 20, 0.2f, mix}, 21);
  run_prefill("64/32/64 lat128 h4 bs16 pieces of 37", {64, 32, 64, 128, 4, 16, 37, 0.2f, mix}, 22);
  run_prefill("32/16/32 lat96 h4 bs16", {32, 16, 32, 96, 4, 16, 1 << 20, 0.3f, mix}, 23);
  run_prefill("32/16/32 lat96 h4 bs64 pieces of 64", {32, 16, 32, 96, 4, 64, 64, 0.3f, mix}, 24);
  run_prefill("64/32/64 lat128 h4 bs16 tiles of 128, pieces of 50", {64, 32, 64, 128, 4, 16, 50, 0.2f, mix, 128}, 25);
  run_prefill("32/16/32 lat96 h4 bs16 tiles of 128", {32, 16, 32, 96, 4, 16, 1 << 20, 0.3f, mix, 128}, 26);
}

// The wgmma kernel (DeepSeek's dims, 128-row tiles) on the scenarios of the mma.sync one.
KERNEL_TEST(mla_prefill_wgmma) {
  const std::vector<ChunkSpec> mix = {{300, 300}, {1, 0}, {1000, 200}, {77, 77}, {50, 0}, {129, 65}, {64, 64}};
  const bool was = tk::mla_prefill_use_wgmma(true);
  run_prefill("wgmma 128/64/128 lat512 h4 bs16 tiles of 128", {128, 64, 128, 512, 4, 16, 1 << 20, 0.12f, mix, 128}, 31);
  run_prefill("wgmma 128/64/128 lat512 h4 bs64 tiles of 128, pieces of 300",
              {128, 64, 128, 512, 4, 64, 300, 0.12f, mix, 128}, 32);
  run_prefill("wgmma 128/64/128 lat512 h2 bs64 tiles of 128, pieces of 100, peaky",
              {128, 64, 128, 512, 2, 64, 100, 0.3f, {{700, 700}, {5, 5}, {3, 0}, {190, 1}}, 128}, 33);
  tk::mla_prefill_use_wgmma(was);
}
