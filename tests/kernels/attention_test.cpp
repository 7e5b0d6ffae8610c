// cache_write_kv + paged_attention (Llama / Qwen2 GQA) against a float64 host reference of the cpu oracle's
// attention (model/cpu/llama.cpp: softmax over positions 0..pos of q.k * scale, then the weighted sum of V).
//
// Each scenario is a mixed batch (prefill chunks that continue cached prefixes, decode tokens, long contexts
// that take the split-KV path, full 64-token tiles of one chunk that take the tensor-core path; run the
// program again with TROUPE_ATTN_NO_MMA=1 TROUPE_ATTN_DECODE_MMA=0 to check the per-lane kernel alone) over block tables with holes: blocks are handed out from a shuffled pool
// larger than needed, so tables are non-contiguous and out of order, and unused table entries point at a
// poison block full of NaN (a read past a sequence's blocks shows up as NaN instead of a crash).
//
// Tolerance: q, K and V are bf16 (exact on both sides); the device accumulates in float32 (the tensor-core
// path also rounds the softmax weights P to bf16 before P V, relative 2^-9 each) and rounds the output to
// bf16 once: |out| <= max|V| = 1, so atol 2e-3 + rtol 2^-8 covers the rounding with float32
// summation noise to spare, while a wrong key range or a wrong block moves outputs by ~1e-1.
#include "kernels/core/ops.hpp"
#include "tests/kernels/device_util.hpp"
#include "tests/kernels/kernel_test.hpp"

#include <algorithm>
#include <cmath>
#include <string>

namespace troupe::kernel_test {
namespace {

using kernels::bf16;

struct Config { int heads, kv_heads, head_dim, block_size; };
struct Chunk { int start, len; };  // cached positions 0..start-1, new tokens start..start+len-1

struct Scenario {
  std::string name;
  std::vector<Chunk> chunks;
};

std::vector<Scenario> scenarios(Rng& rng) {
  std::vector<Scenario> s;
  s.push_back({"decode long ctx", {{3000, 1}}});
  s.push_back({"mixed prefill+decode", {{0, 37}, {1200, 1}, {100, 5}, {0, 1}, {511, 1}, {16, 16}}});
  Scenario many{"64 decodes", {}};
  for (int i = 0; i < 64; ++i) many.chunks.push_back({rng.integer(0, 700), 1});
  s.push_back(many);
  s.push_back({"prefill 300", {{0, 300}}});
  // Chunks that continue cached prefixes, so full 64-token tiles (the tensor-core path) start mid-sequence
  // and tiles straddle chunk boundaries (the per-token path).
  s.push_back({"chunked prefill tiles", {{0, 5}, {100, 200}, {1000, 1}, {64, 130}, {7, 70}}});
  s.push_back({"4 long decodes", {{2047, 1}, {4000, 1}, {2500, 1}, {700, 1}}});
  return s;
}

// The cpu oracle's attention in float64: token t, head h attends to positions 0..positions[t] of its
// sequence's logical K/V ([position][kv head][D]).
std::vector<float> reference(const Config& c, const std::vector<float>& q, const std::vector<std::vector<float>>& K,
                             const std::vector<std::vector<float>>& V, const std::vector<std::int32_t>& token_seq,
                             const std::vector<std::int32_t>& positions) {
  const int H = c.heads, KV = c.kv_heads, D = c.head_dim, T = int(token_seq.size());
  const std::size_t kvd = std::size_t(KV) * D;
  const double scale = 1.0f / std::sqrt(float(D));  // the scale the device is given
  std::vector<float> want(std::size_t(T) * H * D);
  std::vector<double> sc;
  for (int t = 0; t < T; ++t) {
    const int s = token_seq[t], n = positions[t] + 1;
    sc.resize(n);
    for (int h = 0; h < H; ++h) {
      const int kvh = h / (H / KV);
      const float* qh = &q[(std::size_t(t) * H + h) * D];
      double mx = -INFINITY, sum = 0;
      for (int j = 0; j < n; ++j) {
        double d = 0;
        for (int e = 0; e < D; ++e) d += double(qh[e]) * K[s][j * kvd + kvh * D + e];
        sc[j] = d * scale;
        mx = std::max(mx, sc[j]);
      }
      for (auto& x : sc) sum += (x = std::exp(x - mx));
      for (int e = 0; e < D; ++e) {
        double acc = 0;
        for (int j = 0; j < n; ++j) acc += sc[j] * V[s][j * kvd + kvh * D + e];
        want[(std::size_t(t) * H + h) * D + e] = float(acc / sum);
      }
    }
  }
  return want;
}

void run_case(const Config& c, const Scenario& sc, Rng& rng) {
  const int H = c.heads, KV = c.kv_heads, D = c.head_dim, bs = c.block_size, S = int(sc.chunks.size());
  const int row = (H + 2 * KV) * D;  // a fused qkv projection row
  // Block tables: shuffled pool with holes; block 0 is the poison block.
  int needed = 0, max_blocks = 0, max_len = 0, T = 0;
  for (const Chunk& ch : sc.chunks) {
    const int blocks = (ch.start + ch.len + bs - 1) / bs;
    needed += blocks, max_blocks = std::max(max_blocks, blocks + 1), max_len = std::max(max_len, ch.start + ch.len);
    T += ch.len;
  }
  const int num_blocks = needed + S + needed / 3 + 2;  // room for the holes
  std::vector<int> pool(num_blocks - 1);
  for (int i = 0; i < num_blocks - 1; ++i) pool[i] = i + 1;
  std::shuffle(pool.begin(), pool.end(), rng.g);
  std::vector<std::int32_t> tables(std::size_t(S) * max_blocks, 0), seq_lens(S);
  std::size_t next = 0;
  for (int s = 0; s < S; ++s) {
    const int blocks = (sc.chunks[s].start + sc.chunks[s].len + bs - 1) / bs;
    for (int b = 0; b < blocks; ++b) tables[std::size_t(s) * max_blocks + b] = pool[next++];
    next += rng.integer(0, 1);  // leave a hole now and then
    seq_lens[s] = sc.chunks[s].start + sc.chunks[s].len;
  }
  // Logical K/V of every sequence position (float of bf16), and the cache holding the cached prefixes.
  const std::size_t kvd = std::size_t(KV) * D, cache_elems = std::size_t(num_blocks) * bs * kvd;
  std::vector<std::uint16_t> kc(cache_elems, 0x7fc0), vc(cache_elems, 0x7fc0);
  std::vector<std::vector<float>> K(S), V(S);
  auto slot_of = [&](int s, int p) {
    return std::size_t(tables[std::size_t(s) * max_blocks + p / bs]) * bs + p % bs;
  };
  for (int s = 0; s < S; ++s) {
    const int n = seq_lens[s];
    K[s].resize(std::size_t(n) * kvd), V[s].resize(std::size_t(n) * kvd);
    for (std::size_t i = 0; i < K[s].size(); ++i) K[s][i] = round_bf16(rng.uniform()), V[s][i] = round_bf16(rng.uniform());
    for (int p = 0; p < sc.chunks[s].start; ++p)
      for (std::size_t e = 0; e < kvd; ++e) {
        kc[slot_of(s, p) * kvd + e] = float_to_bf16(K[s][p * kvd + e]);
        vc[slot_of(s, p) * kvd + e] = float_to_bf16(V[s][p * kvd + e]);
      }
  }
  // The step's tokens: qkv rows, positions, slots.
  std::vector<std::uint16_t> qkv(std::size_t(T) * row);
  std::vector<float> q(std::size_t(T) * H * D);
  std::vector<std::int32_t> token_seq(T), positions(T), slots(T);
  int t = 0;
  for (int s = 0; s < S; ++s)
    for (int i = 0; i < sc.chunks[s].len; ++i, ++t) {
      const int p = sc.chunks[s].start + i;
      token_seq[t] = s, positions[t] = p, slots[t] = std::int32_t(slot_of(s, p));
      for (int e = 0; e < H * D; ++e) {
        qkv[std::size_t(t) * row + e] = float_to_bf16(rng.uniform(-2, 2));
        q[std::size_t(t) * H * D + e] = bf16_to_float(qkv[std::size_t(t) * row + e]);
      }
      for (std::size_t e = 0; e < kvd; ++e) {
        qkv[std::size_t(t) * row + H * D + e] = float_to_bf16(K[s][p * kvd + e]);
        qkv[std::size_t(t) * row + H * D + kvd + e] = float_to_bf16(V[s][p * kvd + e]);
      }
    }
  Dev<std::uint16_t> dqkv(qkv), dkc(kc), dvc(vc), out(std::size_t(T) * H * D);
  Dev<std::int32_t> dseq(token_seq), dpos(positions), dslots(slots), dtables(tables), dlens(seq_lens);
  kernels::AttnBatch b;
  b.num_tokens = T, b.num_seqs = S, b.token_seq = dseq.get(), b.positions = dpos.get(), b.slot_mapping = dslots.get();
  b.block_tables = dtables.get(), b.seq_lens = dlens.get(), b.max_blocks_per_seq = max_blocks, b.block_size = bs;
  b.max_seq_len = max_len;
  const bf16* base = dqkv.as<bf16>();
  kernels::cache_write_kv(base + H * D, row, base + H * D + kvd, row, KV, D, b, dkc.as<bf16>(), dvc.as<bf16>(), nullptr);
  const float scale = 1.0f / std::sqrt(float(D));
  kernels::paged_attention(base, row, H, KV, D, dkc.as<bf16>(), dvc.as<bf16>(), b, scale, out.as<bf16>(), nullptr);
  // The cache now holds every position of every sequence.
  for (int s = 0; s < S; ++s)
    for (int p = 0; p < seq_lens[s]; ++p)
      for (std::size_t e = 0; e < kvd; ++e) {
        kc[slot_of(s, p) * kvd + e] = float_to_bf16(K[s][p * kvd + e]);
        vc[slot_of(s, p) * kvd + e] = float_to_bf16(V[s][p * kvd + e]);
      }
  const std::string what = sc.name + " H=" + std::to_string(H) + " KV=" + std::to_string(KV) + " D=" +
                           std::to_string(D) + " bs=" + std::to_string(bs);
  check(dkc.host() == kc && dvc.host() == vc, ("cache_write_kv " + what).c_str());
  const std::vector<float> want = reference(c, q, K, V, token_seq, positions);
  check_close(("paged_attention " + what).c_str(), to_floats(out.host()), want, 2e-3f, 1.0f / 256);
}

KERNEL_TEST(core_paged_attention) {
  Rng rng(11);
  const Config configs[] = {{8, 8, 8, 16},    {14, 2, 64, 16},   {32, 8, 128, 16}, {8, 1, 128, 64},
                            {12, 12, 64, 64}, {24, 2, 128, 16},  {16, 4, 64, 64},
                            {32, 1, 64, 16}};  // a 32-wide group: beyond the tensor-core decode path
  const auto scs = scenarios(rng);
  for (const Config& c : configs)
    for (const Scenario& sc : scs) run_case(c, sc, rng);
}

// A batch whose tokens are all padding (slot -1) leaves the cache untouched.
KERNEL_TEST(core_cache_write_padding) {
  const int KV = 2, D = 64, bs = 16;
  std::vector<std::uint16_t> cache(std::size_t(4) * bs * KV * D, 0x1234);
  Dev<std::uint16_t> kc(cache), vc(cache), kv(std::vector<std::uint16_t>(std::size_t(3) * KV * D, 0x3f80));
  Dev<std::int32_t> slots(std::vector<std::int32_t>{-1, -1, -1});
  kernels::AttnBatch b;
  b.num_tokens = 3, b.slot_mapping = slots.get(), b.block_size = bs;
  kernels::cache_write_kv(kv.as<bf16>(), KV * D, kv.as<bf16>(), KV * D, KV, D, b, kc.as<bf16>(), vc.as<bf16>(), nullptr);
  check(kc.host() == cache && vc.host() == cache, "cache_write_kv skips slot -1");
}

}  // namespace
}  // namespace troupe::kernel_test
