// moe_experts against dequantize-then-matmul on the host in float64 (tolerance: see moe_test.cu's header):
// bf16 and FP8 (128x128 block scales, inter not a multiple of 128 included), the single-token GEMVs
// (moe_gemv.cuh), decode tiles (BM 16) and prefill tiles (moe_prefill.cuh, BM 64 and 128), the cuBLASLt path
// (moe_lt.cu) and moe_experts_auto's choice, experts with no tokens and one expert that every token uses.
#include "kernels/gemm/gemm.hpp"
#include "kernels/moe/moe.hpp"
#include "kernels/moe/moe_lt.hpp"
#include "tests/kernels/kernel_test.hpp"
#include "tests/kernels/mla_moe_util.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

namespace {

using namespace troupe::kernel_test;
using troupe::kernels::MoeWeights;

struct Shape {
  int E, K, H, I;
  bool fp8;
};

// splitmix64: fast enough for a few hundred million weights.
struct Fast {
  std::uint64_t s;
  std::uint64_t next() {
    std::uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  float uniform() { return float(next() >> 40) / float(1 << 24) * 2.f - 1.f; }  // [-1, 1)
};

// One expert matrix set, kept in its storage type; dequantized per expert on demand.
struct HostExperts {
  Shape sh;
  std::vector<__nv_bfloat16> w13_bf, w2_bf;
  std::vector<__nv_fp8_e4m3> w13_q, w2_q;
  std::vector<float> s13, s2;  // [E, 2 * ceil(I/128), ceil(H/128)], [E, ceil(H/128), ceil(I/128)]
  int ib() const { return (sh.I + 127) / 128; }
  int hb() const { return (sh.H + 127) / 128; }

  HostExperts(const Shape& s, std::uint64_t seed) : sh(s) {
    Fast f{seed};
    const std::size_t n13 = std::size_t(s.E) * 2 * s.I * s.H, n2 = std::size_t(s.E) * s.H * s.I;
    const float a13 = 1.f / std::sqrt(float(s.H)), a2 = 1.f / std::sqrt(float(s.I));
    if (!s.fp8) {
      w13_bf.resize(n13), w2_bf.resize(n2);
      for (auto& v : w13_bf) v = __float2bfloat16(f.uniform() * a13);
      for (auto& v : w2_bf) v = __float2bfloat16(f.uniform() * a2);
      return;
    }
    // e4m3 codes over most of their range (|v| up to 240), each block with its own scale around a / 240
    w13_q.resize(n13), w2_q.resize(n2);
    for (auto& v : w13_q) v = __nv_fp8_e4m3(f.uniform() * 240.f);
    for (auto& v : w2_q) v = __nv_fp8_e4m3(f.uniform() * 240.f);
    s13.resize(std::size_t(s.E) * 2 * ib() * hb()), s2.resize(std::size_t(s.E) * hb() * ib());
    for (float& v : s13) v = (1.25f + 0.75f * f.uniform()) * a13 / 240.f;
    for (float& v : s2) v = (1.25f + 0.75f * f.uniform()) * a2 / 240.f;
  }
  // Expert e's [gate | up] rows [2I, H] and down [H, I] in float: the checkpoint value times its block scale.
  void dequant(int e, std::vector<float>& w13, std::vector<float>& w2) const {
    const int H = sh.H, I = sh.I;
    w13.resize(std::size_t(2) * I * H), w2.resize(std::size_t(H) * I);
    for (int r = 0; r < 2 * I; ++r)
      for (int c = 0; c < H; ++c) {
        const std::size_t i = (std::size_t(e) * 2 * I + r) * H + c;
        if (!sh.fp8) {
          w13[std::size_t(r) * H + c] = __bfloat162float(w13_bf[i]);
          continue;
        }
        const int rb = r < I ? r / 128 : ib() + (r - I) / 128;  // gate and up blocks stacked
        w13[std::size_t(r) * H + c] = float(w13_q[i]) * s13[(std::size_t(e) * 2 * ib() + rb) * hb() + c / 128];
      }
    for (int r = 0; r < H; ++r)
      for (int c = 0; c < I; ++c) {
        const std::size_t i = (std::size_t(e) * H + r) * I + c;
        w2[std::size_t(r) * I + c] =
            sh.fp8 ? float(w2_q[i]) * s2[(std::size_t(e) * hb() + r / 128) * ib() + c / 128] : __bfloat162float(w2_bf[i]);
      }
  }
};

// DeepSeek's activation quantization, as moe_experts_lt applies it to FP8 experts' inputs: each 128-value group
// to e4m3 with scale amax / 448, back to float.
void quant_groups(double* v, int len) {
  for (int g = 0; g < len; g += 128) {
    double amax = 0;
    for (int j = g; j < std::min(len, g + 128); ++j) amax = std::max(amax, std::fabs(v[j]));
    const float scale = std::max(float(amax), 1e-10f) / 448.f;
    for (int j = g; j < std::min(len, g + 128); ++j)
      v[j] = double(float(__nv_fp8_e4m3(float(v[j]) * (1.f / scale))) * scale);
  }
}

// out[t] += sum_k w[t,k] * down(silu(gate x) * up x), expert by expert. lt: the cuBLASLt path's roundings (gate
// and up to bf16; FP8 experts: x and h quantized per 128 values), which are coarser than the tolerance.
std::vector<float> reference(const HostExperts& hx, const std::vector<float>& x, int n, const std::vector<int>& ids,
                             const std::vector<float>& wts, std::vector<float> out, bool lt = false) {
  const int H = hx.sh.H, I = hx.sh.I, K = hx.sh.K;
  std::vector<float> w13, w2;
  std::vector<double> hh(I), xq(H);
  const bool qa = lt && hx.sh.fp8;
  for (int e = 0; e < hx.sh.E; ++e) {
    bool used = false;
    for (int id : ids) used = used || id == e;
    if (!used) continue;
    hx.dequant(e, w13, w2);
    for (int i = 0; i < n * K; ++i) {
      if (ids[i] != e) continue;
      for (int c = 0; c < H; ++c) xq[c] = x[std::size_t(i / K) * H + c];
      if (qa) quant_groups(xq.data(), H);
      for (int j = 0; j < I; ++j) {
        double g = 0, u = 0;
        const float* wg = w13.data() + std::size_t(j) * H;
        const float* wu = w13.data() + std::size_t(I + j) * H;
        for (int c = 0; c < H; ++c) g += xq[c] * wg[c], u += xq[c] * wu[c];
        if (lt) g = bf16_round(float(g)), u = bf16_round(float(u));
        hh[j] = g / (1.0 + std::exp(-g)) * u;
      }
      if (qa) quant_groups(hh.data(), I);
      for (int r = 0; r < H; ++r) {
        double y = 0;
        for (int j = 0; j < I; ++j) y += hh[j] * w2[std::size_t(r) * I + j];
        out[std::size_t(i / K) * H + r] += float(wts[i] * y);
      }
    }
  }
  return out;
}

// grouped: moe_experts; lt: moe_experts_lt; automatic: moe_experts_auto (the reference follows its choice).
enum class Path { grouped, lt, automatic };

// always_on > 0 (grouped path): the last always_on slots of each token are experts E - always_on + s, promised to
// moe_experts (a single token's gate/up GEMV runs them before its programmatic wait).
void run_experts(const char* what, const Shape& sh, int n, const std::vector<int>& ids, unsigned seed,
                 Path path = Path::grouped, int always_on = 0) {
  const HostExperts hx(sh, seed);
  std::mt19937 rng(seed);
  const std::vector<float> x = random_bf16(rng, std::size_t(n) * sh.H, -1.f, 1.f);
  std::vector<float> wts(ids.size()), out0(std::size_t(n) * sh.H);
  std::uniform_real_distribution<float> wd(0.05f, 1.f), od(-1.f, 1.f);
  for (float& w : wts) w = wd(rng);
  for (float& v : out0) v = od(rng);
  DevBuf<__nv_bfloat16> d_x(to_bf16(x));
  DevBuf<std::int32_t> d_ids(std::vector<std::int32_t>(ids.begin(), ids.end()));
  DevBuf<float> d_w(wts), d_out(out0);
  MoeWeights w;
  w.fp8 = sh.fp8, w.num_experts = sh.E, w.hidden = sh.H, w.inter = sh.I;
  DevBuf<__nv_bfloat16> d13b(sh.fp8 ? 0 : hx.w13_bf.size()), d2b(sh.fp8 ? 0 : hx.w2_bf.size());
  DevBuf<__nv_fp8_e4m3> d13q(sh.fp8 ? hx.w13_q.size() : 0), d2q(sh.fp8 ? hx.w2_q.size() : 0);
  DevBuf<float> ds13(sh.fp8 ? hx.s13 : std::vector<float>{}), ds2(sh.fp8 ? hx.s2 : std::vector<float>{});
  if (sh.fp8) {
    d13q.upload(hx.w13_q), d2q.upload(hx.w2_q);
    w.w13 = d13q.p, w.w2 = d2q.p, w.w13_scale = ds13.p, w.w2_scale = ds2.p;
  } else {
    d13b.upload(hx.w13_bf), d2b.upload(hx.w2_bf);
    w.w13 = d13b.p, w.w2 = d2b.p;
  }
  DevBuf<unsigned char> ws(std::max(troupe::kernels::moe_workspace_bytes(n, sh.K, w),
                                     path == Path::lt ? troupe::kernels::moe_lt_workspace_bytes(n, sh.K, w) : 0));
  bool lt = path == Path::lt;
  if (path == Path::grouped) {
    troupe::kernels::moe_experts(d_x.p, n, d_ids.p, d_w.p, sh.K, w, ws.p, d_out.p, nullptr, always_on);
  } else {
    troupe::kernels::Gemm gemm;
    if (path == Path::lt) {
      troupe::kernels::moe_experts_lt(gemm, d_x.p, n, d_ids.p, d_w.p, sh.K, w, ws.p, d_out.p, nullptr);
    } else {
      lt = troupe::kernels::moe_lt_takes(n, sh.K, w, nullptr);
      troupe::kernels::moe_experts_auto(gemm, d_x.p, n, d_ids.p, d_w.p, sh.K, w, ws.p, d_out.p, nullptr);
    }
  }
  cuda_ok(cudaDeviceSynchronize(), what);
  const std::vector<float> want = reference(hx, x, n, ids, wts, out0, lt);
  double ss = 0;
  for (std::size_t i = 0; i < want.size(); ++i) ss += double(want[i] - out0[i]) * (want[i] - out0[i]);
  const float rms = float(std::sqrt(ss / want.size()));
  check(rms > 1e-3f, "the experts change the output");
  const std::vector<float> got = d_out.download();
  if (!(lt && sh.fp8)) {
    check_close(what, got, want, 2e-2f * rms, 0.f);
    return;
  }
  // FP8 activations: the reference quantizes x and h as the kernels do, but h comes from gate / up values that
  // cuBLASLt's reduced-precision FP8 accumulation moves by ~0.5% (gemm_test.cpp), enough to flip some of h's e4m3
  // roundings (a step of 6%): a noise of ~1% of the RMS per output, with tails. A wrong scale or row moves outputs
  // by O(RMS): bound the error's RMS at 3% and every output at 30% of the RMS.
  double se = 0;
  for (std::size_t i = 0; i < want.size(); ++i) se += double(got[i] - want[i]) * (got[i] - want[i]);
  const double err_rms = std::sqrt(se / want.size()) / rms;
  std::printf("  %s: error RMS %.4f of the output RMS\n", what, err_rms);
  check(err_rms < 0.03, what);
  check_close(what, got, want, 0.3f * rms, 0.f);
}

// Each token: `fixed` (if >= 0) plus distinct random experts from [0, pool).
std::vector<int> pick(int n, int K, int pool, int fixed, unsigned seed) {
  std::mt19937 rng(seed);
  std::vector<int> ids;
  for (int t = 0; t < n; ++t) {
    std::vector<int> e(pool);
    std::iota(e.begin(), e.end(), 0);
    std::shuffle(e.begin(), e.end(), rng);
    std::vector<int> row;
    if (fixed >= 0) row.push_back(fixed);
    for (int v : e)
      if (int(row.size()) < K && v != fixed) row.push_back(v);
    ids.insert(ids.end(), row.begin(), row.end());
  }
  return ids;
}

}  // namespace

KERNEL_TEST(moe_experts_tiny_shapes) {
  for (bool fp8 : {false, true}) {
    const Shape sh{12, 3, 256, 64, fp8};  // the tiny V3 checkpoints (inter 64: half an FP8 block)
    run_experts(fp8 ? "tiny fp8 decode n=5" : "tiny bf16 decode n=5", sh, 5, pick(5, 3, 12, -1, 41), 41);
    run_experts(fp8 ? "tiny fp8 prefill n=200 (BM 64)" : "tiny bf16 prefill n=200 (BM 64)", sh, 200,
                pick(200, 3, 12, -1, 42), 42);
  }
  run_experts("v2-lite-like bf16 h128 inter 64 n=1", {8, 3, 128, 64, false}, 1, pick(1, 3, 8, -1, 43), 43);
}

KERNEL_TEST(moe_experts_skewed_routing) {
  for (bool fp8 : {false, true}) {
    // experts 8..15 get no token, expert 5 gets every token (decode tiles, 100 x 4 entries over 16 experts)
    run_experts(fp8 ? "one expert takes all, fp8, BM 16" : "one expert takes all, bf16, BM 16",
                {16, 4, 512, 128, fp8}, 100, pick(100, 4, 8, 5, 51), 51);
    // prefill tiles (BM 128): 300 tokens, every one on expert 2 plus one of experts 0..7 (several M tiles there)
    run_experts(fp8 ? "one expert takes all, fp8, BM 128" : "one expert takes all, bf16, BM 128",
                {8, 2, 256, 128, fp8}, 300, pick(300, 2, 8, 2, 52), 52);
  }
  run_experts("256 experts, few used, bf16", {256, 8, 256, 128, false}, 3, pick(3, 8, 256, -1, 53), 53);
}

KERNEL_TEST(moe_experts_real_widths) {
  // R1 with TP 8 (hidden 7168, inter 2048 / 8) at decode sizes; 16 of the 256 experts kept to bound host work
  run_experts("R1 widths fp8 n=1", {16, 8, 7168, 256, true}, 1, pick(1, 8, 16, -1, 61), 61);
  run_experts("R1 widths fp8 n=16", {16, 8, 7168, 256, true}, 16, pick(16, 8, 16, -1, 62), 62);
  // single tokens take the GEMV kernels: R1's full inter 2048 with 8 routed + 1 shared expert, and the tiny
  // FP8 checkpoint shape (inter 64: half a scale block)
  run_experts("R1 full widths fp8 n=1, 9 experts (gemv)", {9, 9, 7168, 2048, true}, 1, pick(1, 9, 9, -1, 65), 65);
  run_experts("tiny fp8 n=1 (gemv)", {12, 3, 256, 64, true}, 1, pick(1, 3, 12, -1, 66), 66);
  // V2-Lite's bf16 rows of 1408: 176 chunks of 16 bytes, not a multiple of a warp's 32 lanes
  run_experts("V2-Lite widths bf16 n=1, 8 experts (gemv)", {16, 8, 2048, 1408, false}, 1, pick(1, 8, 16, -1, 67),
              67);
  // V2-Lite's inter 1408 = 11 FP8 blocks, hidden 2048
  run_experts("inter 1408 fp8 n=24", {16, 6, 2048, 1408, true}, 24, pick(24, 6, 16, -1, 63), 63);
  run_experts("inter 1408 bf16 n=24", {16, 6, 2048, 1408, false}, 24, pick(24, 6, 16, -1, 64), 64);
}

KERNEL_TEST(moe_experts_prefill_tiles) {
  // Widths chosen to be ragged everywhere: hidden 592 = 9.25 k tiles of 64 (gate/up K), 4.6 column tiles of 128
  // (down N) and 4.6 FP8 blocks; inter 352 = 5.5 h-column tiles of 64, 5.5 k tiles (down K), 2.75 FP8 blocks.
  for (bool fp8 : {false, true}) {
    const Shape sh{8, 6, 592, 352, fp8};
    // 700 tokens over experts 0..6 (expert 7: none): about 600 rows each, BM 128 tiles with ragged tails
    run_experts(fp8 ? "prefill fp8 BM 128 n=700" : "prefill bf16 BM 128 n=700", sh, 700, pick(700, 6, 7, -1, 71), 71);
    // expert 3 takes all 520 tokens (4 full tiles + 8 rows), experts 0..2 share the second choice, 4..7 get none
    run_experts(fp8 ? "prefill fp8 BM 128 skewed n=520" : "prefill bf16 BM 128 skewed n=520", {8, 2, 592, 352, fp8},
                520, pick(520, 2, 3, 3, 72), 72);
    // 200 tokens x 4 over 16 experts: 50 rows each, BM 64 tiles
    run_experts(fp8 ? "prefill fp8 BM 64 n=200" : "prefill bf16 BM 64 n=200", {16, 4, 592, 352, fp8}, 200,
                pick(200, 4, 16, -1, 73), 73);
  }
}

// moe_experts_lt (per-expert cuBLASLt GEMMs): ragged counts, experts without tokens, padding ids, FP8 scales whose
// k blocks need padding (hidden 640 = 5 blocks, inter 256 = 2), several 4096-token chunks.
KERNEL_TEST(moe_experts_lt_path) {
  for (bool fp8 : {false, true}) {
    // 600 tokens x 3 over experts 0..6 of 8 (expert 7: none): ragged rows, each padded to 16
    run_experts(fp8 ? "lt fp8 n=600" : "lt bf16 n=600", {8, 3, 512, 256, fp8}, 600, pick(600, 3, 7, -1, 81), 81,
                Path::lt);
    // expert 4 takes all 333 tokens, the second choice among 0..3; 5..11 get none
    run_experts(fp8 ? "lt fp8 skewed, hidden 640" : "lt bf16 skewed, hidden 640", {12, 2, 640, 256, fp8}, 333,
                pick(333, 2, 4, 4, 82), 82, Path::lt);
    // ids outside [0, E) are skipped
    std::vector<int> ids = pick(150, 2, 6, -1, 83);
    for (std::size_t i = 0; i < ids.size(); i += 7) ids[i] = i % 2 ? -1 : 6;
    run_experts(fp8 ? "lt fp8 padding ids" : "lt bf16 padding ids", {6, 2, 384, 128, fp8}, 150, ids, 83, Path::lt);
  }
  run_experts("lt bf16 n=4500 (two chunks)", {4, 2, 128, 128, false}, 4500, pick(4500, 2, 4, -1, 84), 84, Path::lt);
  run_experts("lt fp8 n=4500 (two chunks)", {4, 2, 128, 128, true}, 4500, pick(4500, 2, 4, -1, 85), 85, Path::lt);
  // R1's TP8 widths (hidden 7168, inter 256), 16 experts: 64 rows each
  run_experts("lt fp8 R1 TP8 widths n=128", {16, 8, 7168, 256, true}, 128, pick(128, 8, 16, -1, 86), 86, Path::lt);
}

// moe_experts_auto on both sides of the crossover (moe_lt_pays: bf16 24 rows per used expert; FP8 8 rows and
// experts of 32 MiB or 2 GFLOP), and the tiny checkpoints' FP8 shapes (inter 64), which only the grouped kernels take.
KERNEL_TEST(moe_experts_auto_crossover) {
  using troupe::kernels::moe_lt_pays;
  troupe::kernels::MoeWeights w;
  w.num_experts = 16, w.hidden = 256, w.inter = 128, w.w13 = w.w2 = &w;
  check(!troupe::kernels::moe_lt_takes(40, 4, w, nullptr), "40 tokens x 4 over 16 experts: grouped kernels");
  check(troupe::kernels::moe_lt_takes(1024, 4, w, nullptr), "1024 tokens x 4 over 16 experts: cuBLASLt");
  w.fp8 = true;
  check(!moe_lt_pays(1024, 4, w), "FP8 experts of 0.05 GFLOP: grouped kernels");
  w.inter = 64;
  check(!moe_lt_pays(4096, 4, w), "FP8 inter 64: grouped kernels");
  w.num_experts = 256, w.hidden = 7168, w.inter = 2048;  // R1
  check(!moe_lt_pays(128, 8, w) && moe_lt_pays(256, 8, w), "R1 FP8: cuBLASLt from 256 tokens (8 rows)");
  w.inter = 256;  // R1 TP8
  check(!moe_lt_pays(16384, 8, w), "R1 TP8 FP8: grouped kernels");
  w.fp8 = false, w.num_experts = 64, w.hidden = 2048, w.inter = 1408;  // V2-Lite
  check(!moe_lt_pays(128, 6, w) && moe_lt_pays(256, 6, w), "V2-Lite bf16: cuBLASLt from 256 tokens (24 rows)");
  check(troupe::kernels::moe_workspace_bytes(4096, 6, w) == troupe::kernels::moe_lt_workspace_bytes(4096, 6, w),
        "the workspace covers the cuBLASLt path");
  for (bool fp8 : {false, true}) {
    run_experts(fp8 ? "auto fp8 n=40" : "auto bf16 n=40", {16, 4, 256, 128, fp8}, 40, pick(40, 4, 16, -1, 91), 91,
                Path::automatic);
    run_experts(fp8 ? "auto fp8 n=1024" : "auto bf16 n=1024", {16, 4, 256, 128, fp8}, 1024, pick(1024, 4, 16, -1, 92),
                92, Path::automatic);
  }
  run_experts("auto fp8 tiny n=2000", {12, 3, 256, 64, true}, 2000, pick(2000, 3, 12, -1, 93), 93, Path::automatic);
}

// The grouped wgmma GEMMs of the FP8 path, forced on (N multiples of 256; hidden 640 keeps its down GEMM on
// cuBLASLt). By default they take chunks of up to 32 rows per used expert (lt_wgmma_pays).
KERNEL_TEST(moe_experts_lt_wgmma) {
  const int was = troupe::kernels::moe_lt_use_wgmma(1);
  run_experts("lt wgmma fp8 n=600", {8, 3, 512, 256, true}, 600, pick(600, 3, 7, -1, 101), 101, Path::lt);
  run_experts("lt wgmma fp8 skewed, hidden 640", {12, 2, 640, 256, true}, 333, pick(333, 2, 4, 4, 102), 102, Path::lt);
  run_experts("lt wgmma fp8 R1 TP8 widths n=128", {16, 8, 7168, 256, true}, 128, pick(128, 8, 16, -1, 103), 103,
              Path::lt);
  run_experts("lt wgmma fp8 n=4500 (two chunks), hidden 512", {4, 2, 512, 256, true}, 4500,
              pick(4500, 2, 4, -1, 104), 104, Path::lt);
  troupe::kernels::moe_lt_use_wgmma(was);
}

// Shared experts packed as always-on experts, promised to moe_experts: one token's gate/up GEMV runs their slots
// first (R1: 8 routed + 1 shared in FP8; V2-Lite-like bf16 with 2), and a batch of 3 tokens ignores the promise.
KERNEL_TEST(moe_experts_always_on_first) {
  auto with_always_on = [](std::vector<int> ids, int n, int K, int E, int S) {
    std::vector<int> out;
    for (int t = 0; t < n; ++t) {
      out.insert(out.end(), ids.begin() + t * (K - S), ids.begin() + (t + 1) * (K - S));
      for (int s = 0; s < S; ++s) out.push_back(E - S + s);
    }
    return out;
  };
  run_experts("R1 full widths fp8 n=1, shared expert first", {9, 9, 7168, 2048, true}, 1,
              with_always_on(pick(1, 8, 8, -1, 121), 1, 9, 9, 1), 121, Path::grouped, 1);
  run_experts("V2-Lite widths bf16 n=1, 2 shared experts first", {10, 8, 2048, 1408, false}, 1,
              with_always_on(pick(1, 6, 8, -1, 122), 1, 8, 10, 2), 122, Path::grouped, 2);
  run_experts("tiny fp8 n=3, always-on promise on the tiled path", {12, 3, 256, 64, true}, 3,
              with_always_on(pick(3, 2, 11, -1, 123), 3, 3, 12, 1), 123, Path::grouped, 1);
  // a routed slot's id skipped (-1) beside the early shared expert, and five always-on slots at once
  std::vector<int> skipped = with_always_on(pick(1, 8, 8, -1, 124), 1, 9, 9, 1);
  skipped[3] = -1;
  run_experts("R1 full widths fp8 n=1, shared expert first, one id skipped", {9, 9, 7168, 2048, true}, 1, skipped,
              124, Path::grouped, 1);
  run_experts("fp8 n=1, five always-on slots", {12, 8, 1024, 2048, true}, 1,
              with_always_on(pick(1, 3, 7, -1, 125), 1, 8, 12, 5), 125, Path::grouped, 5);
}
