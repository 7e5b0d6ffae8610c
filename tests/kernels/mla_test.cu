// MLA kernels against a float64 host reference of the absorbed attention (model/cpu/mla.cpp attend_absorbed, from
// q_lat onwards): mixed batches of prefill chunks and decode tokens, sequence lengths 1..5000, block sizes 16 and
// 64, block tables with holes and shuffled block ids, 4 / 16 / 128 heads, the tiny dims and 512 + 64.
//
// Tolerance: |got - want| <= 5e-3 + 1e-2 |want|. The output is bf16 (relative rounding 2^-9 <= 2e-3 of |o|
// <= 1); the fast path also rounds the softmax weights P to bf16 before P.V, which moves o by at most
// 2^-9 * sum_j p_j |v_j| / l <= 2e-3 since cached values lie in [-1, 1]. Scores accumulate bf16 products in
// float32 (exact products, ~1e-6 relative sums). 5e-3 covers both with margin; a wrong mask, a missed block or
// a bad split merge moves outputs by 1e-1 or more.
#include "kernels/mla/mla.hpp"
#include "kernels/mla/mla_absorb.hpp"
#include "tests/kernels/kernel_test.hpp"
#include "tests/kernels/mla_moe_util.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace {

using namespace troupe::kernel_test;
using troupe::kernels::AttnBatch;

struct SeqSpec {
  int len;    // tokens in the cache after this step
  int count;  // query tokens this step (the last `count` positions)
};

struct Scenario {
  int latent, rope, heads, block_size;
  float scale;
  int stride_pad;  // rows handed to mla_cache_write are latent + rope + stride_pad wide
  std::vector<SeqSpec> seqs;
};

struct HostBatch {
  std::vector<std::int32_t> token_seq, positions, slots, tables, seq_lens;
  int max_blocks = 0, max_seq_len = 0, num_blocks = 0;
  int slot(int s, int pos, int bs) const { return tables[std::size_t(s) * max_blocks + pos / bs] * bs + pos % bs; }
};

// Block tables drawn from a shuffled pool twice the needed size (unused ids are holes), each table with one
// trailing -1 entry that must never be read.
HostBatch make_batch(const Scenario& sc, std::mt19937& rng) {
  HostBatch hb;
  const int bs = sc.block_size;
  int need = 0;
  for (const SeqSpec& s : sc.seqs) {
    hb.max_blocks = std::max(hb.max_blocks, (s.len + bs - 1) / bs);
    need += (s.len + bs - 1) / bs;
  }
  hb.max_blocks += 1;
  hb.num_blocks = 2 * need + 3;
  std::vector<int> pool(hb.num_blocks);
  std::iota(pool.begin(), pool.end(), 0);
  std::shuffle(pool.begin(), pool.end(), rng);
  hb.tables.assign(sc.seqs.size() * hb.max_blocks, -1);
  int next = 0;
  for (std::size_t s = 0; s < sc.seqs.size(); ++s)
    for (int b = 0; b < (sc.seqs[s].len + bs - 1) / bs; ++b) hb.tables[s * hb.max_blocks + b] = pool[next++];
  for (std::size_t s = 0; s < sc.seqs.size(); ++s) {
    const SeqSpec& q = sc.seqs[s];
    hb.seq_lens.push_back(q.len);
    hb.max_seq_len = std::max(hb.max_seq_len, q.len);
    for (int i = 0; i < q.count; ++i) {
      const int pos = q.len - q.count + i;
      hb.token_seq.push_back(int(s));
      hb.positions.push_back(pos);
      hb.slots.push_back(hb.slot(int(s), pos, bs));
    }
  }
  return hb;
}

struct DevBatch {
  DevBuf<std::int32_t> token_seq, positions, slots, tables, seq_lens;
  explicit DevBatch(const HostBatch& h)
      : token_seq(h.token_seq), positions(h.positions), slots(h.slots), tables(h.tables), seq_lens(h.seq_lens) {}
  AttnBatch view(const HostBatch& h, int bs) const {
    AttnBatch b;
    b.num_tokens = int(h.token_seq.size());
    b.num_seqs = int(h.seq_lens.size());
    b.token_seq = token_seq.p;
    b.positions = positions.p;
    b.slot_mapping = slots.p;
    b.block_tables = tables.p;
    b.seq_lens = seq_lens.p;
    b.max_blocks_per_seq = h.max_blocks;
    b.block_size = bs;
    b.max_seq_len = h.max_seq_len;
    return b;
  }
};

// Writes every cached row of every sequence through mla_cache_write (plus one padding token, slot -1) and checks
// the cache holds exactly those rows. Returns the host mirror of the cache.
std::vector<float> fill_cache(const Scenario& sc, const HostBatch& hb, std::mt19937& rng, DevBuf<__nv_bfloat16>& cache) {
  const int width = sc.latent + sc.rope, stride = width + sc.stride_pad, bs = sc.block_size;
  std::vector<std::int32_t> slots;
  for (std::size_t s = 0; s < sc.seqs.size(); ++s)
    for (int p = 0; p < sc.seqs[s].len; ++p) slots.push_back(hb.slot(int(s), p, bs));
  slots.push_back(-1);
  const int n = int(slots.size());
  std::vector<float> rows = random_bf16(rng, std::size_t(n) * stride, -1.f, 1.f);
  std::vector<float> mirror(std::size_t(hb.num_blocks) * bs * width, NAN);
  for (int i = 0; i + 1 < n; ++i)
    std::copy(rows.begin() + std::size_t(i) * stride, rows.begin() + std::size_t(i) * stride + width,
              mirror.begin() + std::size_t(slots[i]) * width);
  cuda_ok(cudaMemset(cache.p, 0xff, cache.n * sizeof(__nv_bfloat16)), "memset");  // NaN: stray reads show
  DevBuf<__nv_bfloat16> d_rows(to_bf16(rows));
  DevBuf<std::int32_t> d_slots(slots);
  AttnBatch wb;
  wb.num_tokens = n;
  wb.slot_mapping = d_slots.p;
  wb.block_size = bs;
  troupe::kernels::mla_cache_write(d_rows.p, stride, sc.latent, sc.rope, wb, cache.p, nullptr);
  const std::vector<float> got = from_bf16(cache.download());
  std::size_t bad = 0;
  for (std::size_t i = 0; i < got.size(); ++i)
    if (!(std::isnan(mirror[i]) ? std::isnan(got[i]) : got[i] == mirror[i])) ++bad;
  if (bad) std::printf("  cache: %zu of %zu values differ\n", bad, got.size());
  check(bad == 0, "mla_cache_write puts each row in its slot and nothing elsewhere");
  return mirror;
}

std::vector<float> reference(const Scenario& sc, const HostBatch& hb, const std::vector<float>& q,
                             const std::vector<float>& cache) {
  const int width = sc.latent + sc.rope, H = sc.heads, T = int(hb.token_seq.size());
  std::vector<float> out(std::size_t(T) * H * sc.latent);
  std::vector<double> p, o(sc.latent);
  for (int t = 0; t < T; ++t)
    for (int h = 0; h < H; ++h) {
      const float* qh = q.data() + (std::size_t(t) * H + h) * width;
      const int n = hb.positions[t] + 1;
      p.assign(n, 0.0);
      double mx = -INFINITY;
      for (int j = 0; j < n; ++j) {
        const float* r = cache.data() + std::size_t(hb.slot(hb.token_seq[t], j, sc.block_size)) * width;
        double d = 0;
        for (int c = 0; c < width; ++c) d += double(qh[c]) * r[c];
        p[j] = d * sc.scale;
        mx = std::max(mx, p[j]);
      }
      double sum = 0;
      for (double& v : p) sum += (v = std::exp(v - mx));
      std::fill(o.begin(), o.end(), 0.0);
      for (int j = 0; j < n; ++j) {
        const float* r = cache.data() + std::size_t(hb.slot(hb.token_seq[t], j, sc.block_size)) * width;
        for (int c = 0; c < sc.latent; ++c) o[c] += p[j] * r[c];
      }
      for (int c = 0; c < sc.latent; ++c) out[(std::size_t(t) * H + h) * sc.latent + c] = float(o[c] / sum);
    }
  return out;
}

// The fused merge + W_UV (MlaUvOut) against the host reference's latent rows times W_UV in float64: R1's per-head
// kv_b layout (nope 128, v 128), tolerance as the attention's plus the unfused path's bf16 rounding of o_lat.
void check_uv(const char* what, const Scenario& sc, const HostBatch& hb, const std::vector<float>& olat_want,
              const __nv_bfloat16* q, const __nv_bfloat16* cache, const AttnBatch& b, void* ws,
              __nv_bfloat16* scratch, std::mt19937& rng) {
  const int T = int(hb.token_seq.size()), H = sc.heads, nope = 128, v = 128, L = sc.latent;
  const std::vector<float> w = random_bf16(rng, std::size_t(H) * (nope + v) * L, -0.1f, 0.1f);
  DevBuf<__nv_bfloat16> d_w(to_bf16(w)), d_attn(std::size_t(T) * H * v);
  troupe::kernels::MlaUvOut uv;
  uv.kv_b = d_w.p, uv.nope = nope, uv.v_dim = v, uv.out = d_attn.p;
  troupe::kernels::mla_attention_absorbed(q, H, L, sc.rope, cache, b, sc.scale, ws, scratch, nullptr, &uv);
  cuda_ok(cudaDeviceSynchronize(), what);
  std::vector<float> want(std::size_t(T) * H * v);
  for (int t = 0; t < T; ++t)
    for (int h = 0; h < H; ++h)
      for (int j = 0; j < v; ++j) {
        double acc = 0;
        const float* row = &w[(std::size_t(h) * (nope + v) + nope + j) * L];
        for (int c = 0; c < L; ++c) acc += double(olat_want[(std::size_t(t) * H + h) * L + c]) * row[c];
        want[(std::size_t(t) * H + h) * v + j] = float(acc);
      }
  check_close((std::string(what) + ", fused W_UV").c_str(), from_bf16(d_attn.download()), want, 5e-3f, 1e-2f);
}

void run_scenario(const char* what, const Scenario& sc, unsigned seed) {
  std::mt19937 rng(seed);
  const HostBatch hb = make_batch(sc, rng);
  const int width = sc.latent + sc.rope, T = int(hb.token_seq.size());
  DevBuf<__nv_bfloat16> cache(std::size_t(hb.num_blocks) * sc.block_size * width);
  const std::vector<float> mirror = fill_cache(sc, hb, rng, cache);
  const std::vector<float> q = random_bf16(rng, std::size_t(T) * sc.heads * width, -1.f, 1.f);
  DevBatch db(hb);
  const AttnBatch b = db.view(hb, sc.block_size);
  DevBuf<__nv_bfloat16> d_q(to_bf16(q)), d_out(std::size_t(T) * sc.heads * sc.latent);
  const std::size_t ws_bytes =
      troupe::kernels::mla_workspace_bytes(T, sc.heads, sc.latent, hb.max_seq_len, sc.block_size);
  DevBuf<unsigned char> ws(ws_bytes);
  troupe::kernels::mla_attention_absorbed(d_q.p, sc.heads, sc.latent, sc.rope, cache.p, b, sc.scale, ws.p, d_out.p,
                                          nullptr);
  cuda_ok(cudaDeviceSynchronize(), what);
  const std::vector<float> want = reference(sc, hb, q, mirror);
  check_close(what, from_bf16(d_out.download()), want, 5e-3f, 1e-2f);
  if (sc.latent == 512 && T <= troupe::kernels::kMlaAbsorbMaxTokens)
    check_uv(what, sc, hb, want, d_q.p, cache.p, b, ws.p, d_out.p, rng);
}

std::vector<SeqSpec> mixed_specs() {
  // decode at block edges and far out, a chunk in the middle of a prompt, a whole prompt, a short chunk
  return {{1, 1}, {2, 1}, {17, 1}, {63, 1}, {64, 1}, {65, 1}, {300, 37}, {40, 40}, {5000, 1}, {129, 3}};
}

}  // namespace

KERNEL_TEST(mla_generic_tiny_v2_dims) {
  run_scenario("96+16 h4 bs16", {96, 16, 4, 16, 0.3f, 1, mixed_specs()}, 1);
  run_scenario("96+16 h4 bs64", {96, 16, 4, 64, 0.3f, 8, mixed_specs()}, 2);
}

KERNEL_TEST(mla_generic_tiny_v3_dims) {
  run_scenario("128+32 h4 bs16", {128, 32, 4, 16, 0.2f, 8, mixed_specs()}, 3);
  run_scenario("128+32 h16 bs64 peaky", {128, 32, 16, 64, 1.0f, 0, {{7, 7}, {900, 2}, {1, 1}}}, 4);
}

KERNEL_TEST(mla_fast_mixed_batches) {
  const float scale = 1.0f / std::sqrt(192.0f);
  run_scenario("512+64 h16 bs16", {512, 64, 16, 16, scale, 8, mixed_specs()}, 5);
  run_scenario("512+64 h16 bs64", {512, 64, 16, 64, scale, 0, mixed_specs()}, 6);
  // 4 heads: 4 tokens share a CTA, and a tile spans several sequences
  run_scenario("512+64 h4 bs16 peaky", {512, 64, 4, 16, 1.0f, 0, {{10, 1}, {20, 1}, {1, 1}, {100, 1}, {50, 7}, {3, 2}}},
               7);
  // single decodes short enough to run unsplit: the fused W_UV reads o_lat rows instead of split partials
  run_scenario("512+64 h128 two short decodes", {512, 64, 128, 16, scale, 0, {{30, 1}, {7, 1}}}, 15);
  run_scenario("512+64 h4 bs64", {512, 64, 4, 64, scale, 0, mixed_specs()}, 8);
}

KERNEL_TEST(mla_fast_split_kv) {
  const float scale = 1.0f / std::sqrt(192.0f);
  run_scenario("512+64 h16 one long decode (split)", {512, 64, 16, 64, scale, 0, {{5000, 1}}}, 9);
  run_scenario("512+64 h16 two decodes (split)", {512, 64, 16, 16, 1.0f, 0, {{4000, 1}, {2500, 1}}}, 10);
  run_scenario("512+64 h128 (split, 8 head blocks)", {512, 64, 128, 64, scale, 0, {{5000, 1}, {3000, 1}, {1, 1}}},
               11);
  run_scenario("512+64 h128 prefill chunk + decode", {512, 64, 128, 16, scale, 0, {{1200, 12}, {70, 1}}}, 12);
}

KERNEL_TEST(mla_fast_wide_decode_batch) {
  std::mt19937 rng(13);
  std::vector<SeqSpec> seqs;
  for (int i = 0; i < 140; ++i) seqs.push_back({1 + int(rng() % 600), 1});
  run_scenario("512+64 h16 140 decodes (no split)", {512, 64, 16, 16, 1.0f / std::sqrt(192.0f), 0, seqs}, 14);
}

KERNEL_TEST(mla_rejects_bad_dims) {
  AttnBatch b;
  b.num_tokens = 1;
  b.max_blocks_per_seq = 1;
  bool threw = false;
  try {
    troupe::kernels::mla_attention_absorbed(nullptr, 4, 2048, 64, nullptr, b, 1.f, nullptr, nullptr, nullptr);
  } catch (const std::invalid_argument&) {
    threw = true;
  }
  check(threw, "latent_dim 2048 is refused with invalid_argument");
}
