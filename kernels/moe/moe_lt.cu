// moe_experts_lt: routed experts as cuBLASLt GEMMs (see moe_lt.hpp for the data flow). bf16 experts, batched
// form: every expert gets the same M rows and each of the two GEMMs is one strided-batched call over all experts
// (one launch instead of one per expert: the per-call host cost, ~10 us, bounds the per-expert loop). FP8 experts,
// and bf16 batches too skewed for the batched form: one GEMM per used expert on its own rows (cuBLASLt 13.0 turned
// a strided-batched FP8 GEMM with 128x128 block scales down on the H200); the FP8 ones spread over the lanes of
// lt_lanes.hpp (threads with their own cuBLASLt handle and stream), so several experts' GEMMs share the GPU.
#include "kernels/moe/moe_lt.hpp"

#include "kernels/core/launch.hpp"
#include "kernels/core/tma.hpp"
#include "kernels/gemm/gemm.hpp"
#include "kernels/moe/moe_lt_kernels.cuh"
#include "kernels/moe/lt_lanes.hpp"
#include "kernels/moe/moe_lt_plan.hpp"
#include "kernels/moe/moe_wgmma.cuh"

#include <algorithm>
#include <atomic>
#include <stdexcept>
#include <string>
#include <vector>

namespace troupe::kernels {

namespace {

using namespace moe_detail;
using fp8 = __nv_fp8_e4m3;

void lt_check(cudaError_t e, const char* what) { check_cuda(e, std::string("moe_experts_lt ") + what); }

// TROUPE_MOE_LT=0: never take the path (and reserve no workspace for it). TROUPE_MOE_LT_BATCHED=0: one GEMM per
// used expert, never the batched form. TROUPE_MOE_LT_MIN_ROWS: the crossover in average rows per used expert (both
// dtypes; lt_pays in moe_lt_plan.hpp has the measured defaults). bf16 batched wins from 24 rows per expert (V2-Lite
// 256 tokens: 364 against 760 us); the bf16 per-expert loop, host-bound near 2 x 10 us per used expert, only for
// large experts: V2-Lite 6.6 GFLOP (384 rows) wins, 3.3 loses (kBf16MinExpertFlops).
bool lt_disabled() {
  static const bool off = env_int("TROUPE_MOE_LT", 1) == 0;
  return off;
}
bool batched_enabled() {
  static const bool on = env_int("TROUPE_MOE_LT_BATCHED", 1) != 0;
  return on;
}
int lt_min_rows() {
  static const int v = env_int("TROUPE_MOE_LT_MIN_ROWS", -1);
  return v;
}
constexpr double kBf16MinExpertFlops = 5e9;  // the bf16 per-expert loop: gate|up + down FLOPs
double expert_flops(const MoeWeights& w, double rows) { return 6.0 * w.hidden * w.inter * rows; }

bool shapes_fit(const MoeWeights& w) {
  if (lt_disabled() || w.num_experts <= 0 || w.num_experts > kLtMaxExperts) return false;
  if (w.hidden % 16 || w.inter % 16) return false;
  return !w.fp8 || (w.hidden % 128 == 0 && w.inter % 128 == 0);
}

// FP8 weight scales [rows, kb] -> [rows, round4(kb)] (cuBLASLt's k-block padding), or the originals.
const float* padded_scales(const float* src, std::size_t rows, int kb, float* dst, cudaStream_t s) {
  if (kb % 4 == 0) return src;
  lt_check(cudaMemcpy2DAsync(dst, round4(kb) * sizeof(float), src, kb * sizeof(float), kb * sizeof(float), rows,
                             cudaMemcpyDeviceToDevice, s),
           "pad scales");
  return dst;
}

// One chunk: its buffers and the host's view of its segments.
struct Chunk {
  Gemm& gemm;
  const MoeWeights& w;
  cudaStream_t s;
  int E, H, I, top_k, n;
  std::int32_t *perm, *inv, *d_off;
  void* A;       // gathered x, then h
  float* As;     // FP8: their token-major scales
  void* B;       // gate|up, then y
  float *s13, *s2;
  std::vector<std::int32_t> off;  // as grouped with kLtPad padding: off[e + 1] - off[e] == 0 iff no token
  int M = 0;                      // batched: rows of every expert; 0: per-expert segments off[e] ..
  bool wgmma = false;             // FP8: the grouped wgmma GEMMs where N allows (lt_wgmma_pays) ...
  GmTile* tiles = nullptr;        // ... and their work items, max_tiles at most (LtLayout)
  std::size_t max_tiles = 0;
  int rows() const { return M ? E * M : off[E]; }
  int seg(int e) const { return M ? e * M : off[e]; }
  int seg_rows(int e) const { return M ? M : off[e + 1] - off[e]; }
  bool used(int e) const { return off[e + 1] > off[e]; }
};

// C = A W^T for every used expert, FP8: one GEMM each, spread over the lanes (lt_lanes.hpp).
void fp8_step(Chunk& c, const fp8* a, int K, const fp8* wt, int N, const float* ws, bf16* out) {
  const std::size_t ws_e = std::size_t((N + 127) / 128) * round4(K / 128);
  LtLanes& lanes = LtLanes::of_current_device();
  std::vector<int> rows(c.E);
  for (int e = 0; e < c.E; ++e) rows[e] = c.used(e) ? c.seg_rows(e) : 0;
  std::vector<std::vector<Fp8TmCall>> calls;
  for (const auto& experts : assign_lanes(rows, lanes.lanes())) {
    auto& lane = calls.emplace_back();
    for (int e : experts)
      lane.push_back({a + std::size_t(c.seg(e)) * K, c.As + std::size_t(c.seg(e)) * (K / 128),
                      wt + std::size_t(e) * N * K, ws + e * ws_e, out + std::size_t(c.seg(e)) * N, c.seg_rows(e), N,
                      K});
  }
  lanes.run(c.gemm, c.s, calls);
}

// The FP8 experts' GEMMs as one grouped wgmma launch (moe_wgmma.cuh, where N is a multiple of 256) or per expert on
// cuBLASLt: lt_wgmma_pays's mode, from TROUPE_MOE_LT_WGMMA (0 never, 1 always; by rows per expert otherwise) or
// moe_lt_use_wgmma.
static_assert(kGmBM == kLtWgmmaTileRows && sizeof(GmTile) == kLtWgmmaTileBytes, "moe_lt_plan.hpp sizes the tiles");
std::atomic<int>& wgmma_mode() {
  static std::atomic<int> mode{[] {
    const int v = env_int("TROUPE_MOE_LT_WGMMA", -1);
    return v == 0 || v == 1 ? v : -1;
  }()};
  return mode;
}

// C = A W^T for every used expert in one launch (moe_wgmma.cuh); w_scale unpadded ([E][N/128][K/128]).
void grouped_step(Chunk& c, const fp8* a, int K, const fp8* wt, int N, const float* w_scale, bf16* out) {
  std::vector<GmTile> tiles;
  for (int e = 0; e < c.E; ++e)
    for (int r = c.seg(e); r < c.seg(e) + c.seg_rows(e); r += kGmBM) tiles.push_back({e, r});
  if (tiles.empty()) return;
  if (tiles.size() > c.max_tiles) throw std::logic_error("moe_experts_lt: more wgmma tiles than the workspace holds");
  // From pageable memory: the copy is staged before the call returns, so `tiles` may go right after.
  lt_check(cudaMemcpyAsync(c.tiles, tiles.data(), tiles.size() * sizeof(GmTile), cudaMemcpyHostToDevice, c.s),
           "tiles");
  const CUtensorMap ta = tma_map_rows_sw128(a, std::uint64_t(c.rows()), std::uint64_t(K), std::uint64_t(K), kGmBM);
  const CUtensorMap tb = tma_map_rows_sw128(wt, std::uint64_t(c.E) * N, std::uint64_t(K), std::uint64_t(K), kGmBN);
  GmArgs g{c.As, c.d_off, w_scale, out, N, c.tiles, N, K};
  static std::atomic<std::uint64_t> done{0};
  opt_in_smem(moe_fp8_wgmma_kernel, kGmSmem, done);
  moe_fp8_wgmma_kernel<<<dim3(N / kGmBN, unsigned(tiles.size())), kGmThreads, kGmSmem, c.s>>>(ta, tb, g);
  lt_check(cudaGetLastError(), "grouped wgmma launch");
}

void run_fp8(Chunk& c, const bf16* x, const float* wts, float* out) {
  const int E = c.E, H = c.H, I = c.I, hb = H / 128, ib = I / 128, rows = c.rows();
  const float* s13 = padded_scales(c.w.w13_scale, std::size_t(E) * 2 * ib, hb, c.s13, c.s);
  const float* s2 = padded_scales(c.w.w2_scale, std::size_t(E) * hb, ib, c.s2, c.s);
  auto* q = static_cast<fp8*>(c.A);
  auto* gu = static_cast<bf16*>(c.B);
  // A round of 16 groups per BATCH: the wide rows (H) in as few rounds as possible, h (I, 16 groups in R1) in one.
  if (hb > 16)
    lt_quant_kernel<false, 4><<<rows, kLtQuantThreads, 0, c.s>>>(x, c.perm, c.top_k, c.d_off, E, H, q, c.As);
  else
    lt_quant_kernel<false, 1><<<rows, kLtQuantThreads, 0, c.s>>>(x, c.perm, c.top_k, c.d_off, E, H, q, c.As);
  const bool grouped13 = c.wgmma && (2 * I) % kGmBN == 0, grouped2 = c.wgmma && H % kGmBN == 0;
  if (grouped13)
    grouped_step(c, q, H, static_cast<const fp8*>(c.w.w13), 2 * I, c.w.w13_scale, gu);
  else
    fp8_step(c, q, H, static_cast<const fp8*>(c.w.w13), 2 * I, s13, gu);
  if (ib > 16)
    lt_quant_kernel<true, 4><<<rows, kLtQuantThreads, 0, c.s>>>(gu, c.perm, c.top_k, c.d_off, E, I, q, c.As);
  else
    lt_quant_kernel<true, 1><<<rows, kLtQuantThreads, 0, c.s>>>(gu, c.perm, c.top_k, c.d_off, E, I, q, c.As);
  bf16* y = gu;  // gate|up is dead once h is quantized
  if (grouped2)
    grouped_step(c, q, I, static_cast<const fp8*>(c.w.w2), H, c.w.w2_scale, y);
  else
    fp8_step(c, q, I, static_cast<const fp8*>(c.w.w2), H, s2, y);
  lt_combine_kernel<bf16><<<c.n, 256, 0, c.s>>>(y, c.inv, wts, c.top_k, H, out);
}

void run_bf16(Chunk& c, const bf16* x, const float* wts, float* out) {
  const int E = c.E, H = c.H, I = c.I, rows = c.rows(), M = c.M;
  auto* a = static_cast<bf16*>(c.A);
  auto* gu = static_cast<bf16*>(c.B);
  const auto* w13 = static_cast<const bf16*>(c.w.w13);
  const auto* w2 = static_cast<const bf16*>(c.w.w2);
  lt_gather_kernel<<<rows, 128, 0, c.s>>>(x, c.perm, c.top_k, H, a);
  if (M) {
    c.gemm.bf16_batched(a, H, std::int64_t(M) * H, w13, H, std::int64_t(2) * I * H, gu, 2 * I,
                        std::int64_t(M) * 2 * I, E, M, 2 * I, H, false, c.s);
  } else {
    for (int e = 0; e < E; ++e)
      if (c.used(e))
        c.gemm.bf16(a + std::size_t(c.seg(e)) * H, w13 + std::size_t(e) * 2 * I * H, gu + std::size_t(c.seg(e)) * 2 * I,
                    OutType::bf16, c.seg_rows(e), 2 * I, H, c.s);
  }
  const std::size_t vecs = std::size_t(rows) * (I / 8);
  lt_silu_kernel<<<int(std::min<std::size_t>((vecs + 255) / 256, 4096)), 256, 0, c.s>>>(gu, rows, I, a);
  if (M) {  // the batched bf16 GEMM writes bf16: y rounded to bf16 before the weighted sum
    c.gemm.bf16_batched(a, I, std::int64_t(M) * I, w2, I, std::int64_t(H) * I, gu, H, std::int64_t(M) * H, E, M, H,
                        I, false, c.s);
    lt_combine_kernel<bf16><<<c.n, 256, 0, c.s>>>(gu, c.inv, wts, c.top_k, H, out);
    return;
  }
  auto* y = static_cast<float*>(c.B);
  for (int e = 0; e < E; ++e)
    if (c.used(e))
      c.gemm.bf16(a + std::size_t(c.seg(e)) * I, w2 + std::size_t(e) * H * I, y + std::size_t(c.seg(e)) * H,
                  OutType::f32, c.seg_rows(e), H, I, c.s);
  lt_combine_kernel<float><<<c.n, 256, 0, c.s>>>(y, c.inv, wts, c.top_k, H, out);
}

// grouped_if_slow (moe_experts_auto): a bf16 chunk too skewed for the batched form whose experts are too small for
// the per-expert loop runs on moe_experts' grouped kernels instead (same workspace; nothing of it is live).
void lt_chunk(Gemm& gemm, const bf16* x, int n, const std::int32_t* ids, const float* wts, int top_k,
              const MoeWeights& w, unsigned char* base, const LtLayout& l, float* out, cudaStream_t s,
              bool grouped_if_slow) {
  Chunk c{gemm, w, s, w.num_experts, w.hidden, w.inter, top_k, n};
  c.perm = reinterpret_cast<std::int32_t*>(base + l.perm);
  c.inv = reinterpret_cast<std::int32_t*>(base + l.inv);
  c.d_off = reinterpret_cast<std::int32_t*>(base + l.offsets);
  c.A = base + l.a, c.As = reinterpret_cast<float*>(base + l.a_scale), c.B = base + l.b;
  c.s13 = reinterpret_cast<float*>(base + l.s13), c.s2 = reinterpret_cast<float*>(base + l.s2);
  c.tiles = reinterpret_cast<GmTile*>(base + l.tiles), c.max_tiles = l.max_tiles;
  const int E = c.E, entries = n * top_k;
  lt_group_kernel<<<1, kLtGroupThreads, 0, s>>>(ids, entries, E, 0, c.perm, c.inv, c.d_off);
  c.off.resize(E + 1);
  lt_check(cudaMemcpyAsync(c.off.data(), c.d_off, (E + 1) * sizeof(std::int32_t), cudaMemcpyDeviceToHost, s),
           "counts");
  lt_check(cudaStreamSynchronize(s), "counts sync");
  if (c.off[E] == 0) return;
  int max_rows = 0, used = 0;
  for (int e = 0; e < E; ++e) max_rows = std::max(max_rows, c.off[e + 1] - c.off[e]), used += c.used(e);
  if (!w.fp8 && batched_enabled() && used > 1 && std::size_t(E) * max_rows <= l.max_rows) {
    c.M = max_rows;  // regroup with M rows for every expert
    lt_group_kernel<<<1, kLtGroupThreads, 0, s>>>(ids, entries, E, c.M, c.perm, c.inv, c.d_off);
  } else if (!w.fp8 && grouped_if_slow && expert_flops(w, double(entries) / used) < kBf16MinExpertFlops) {
    moe_experts(x, n, ids, wts, top_k, w, base, out, s);
    return;
  }
  c.wgmma = lt_wgmma_pays(entries, used, wgmma_mode().load());
  if (w.fp8)
    run_fp8(c, x, wts, out);
  else
    run_bf16(c, x, wts, out);
  lt_check(cudaGetLastError(), "launch");
}

}  // namespace

int moe_lt_use_wgmma(int mode) { return wgmma_mode().exchange(mode < 0 ? -1 : mode > 0); }

std::size_t moe_lt_workspace_bytes(int max_tokens, int top_k, const MoeWeights& w) {
  if (max_tokens <= 0 || top_k <= 0 || !shapes_fit(w)) return 0;
  return lt_layout(max_tokens, top_k, w.num_experts, w.hidden, w.inter, w.fp8).total;
}

bool moe_lt_pays(int n, int top_k, const MoeWeights& w) {
  if (n <= 0 || top_k <= 0 || top_k > kLtCombineMaxK || !shapes_fit(w)) return false;
  const long entries = long(std::min(n, kLtChunkTokens)) * top_k, used = std::min<long>(w.num_experts, entries);
  return lt_pays(entries, used, w.hidden, w.inter, w.fp8, lt_min_rows());
}

bool moe_lt_takes(int n, int top_k, const MoeWeights& w, cudaStream_t s) {
  if (!moe_lt_pays(n, top_k, w)) return false;
  cudaStreamCaptureStatus cap = cudaStreamCaptureStatusNone;
  if (cudaStreamIsCapturing(s, &cap) != cudaSuccess || cap != cudaStreamCaptureStatusNone) return false;
  return true;
}

namespace {
void lt_all(Gemm& gemm, const bf16* x, int n, const std::int32_t* topk_ids, const float* topk_weights, int top_k,
            const MoeWeights& w, void* workspace, float* out, cudaStream_t s, bool grouped_if_slow) {
  if (n <= 0) return;
  if (!shapes_fit(w)) throw std::invalid_argument("moe_experts_lt: shapes not supported (or TROUPE_MOE_LT=0)");
  if (top_k > kLtCombineMaxK) throw std::invalid_argument("moe_experts_lt: more than 64 experts per token");
  if (!workspace) throw std::invalid_argument("moe_experts_lt: workspace is null (moe_workspace_bytes)");
  const LtLayout l = lt_layout(n, top_k, w.num_experts, w.hidden, w.inter, w.fp8);
  auto* base = static_cast<unsigned char*>(workspace);
  for (int t0 = 0; t0 < n; t0 += kLtChunkTokens) {
    const int c = std::min(kLtChunkTokens, n - t0);
    lt_chunk(gemm, x + std::size_t(t0) * w.hidden, c, topk_ids + std::size_t(t0) * top_k,
             topk_weights + std::size_t(t0) * top_k, top_k, w, base, l, out + std::size_t(t0) * w.hidden, s,
             grouped_if_slow);
  }
}
}  // namespace

void moe_experts_lt(Gemm& gemm, const bf16* x, int n, const std::int32_t* topk_ids, const float* topk_weights,
                    int top_k, const MoeWeights& w, void* workspace, float* out, cudaStream_t s) {
  lt_all(gemm, x, n, topk_ids, topk_weights, top_k, w, workspace, out, s, false);
}

void moe_experts_auto(Gemm& gemm, const bf16* x, int n, const std::int32_t* topk_ids, const float* topk_weights,
                      int top_k, const MoeWeights& w, void* workspace, float* out, cudaStream_t s, int always_on) {
  if (moe_lt_takes(n, top_k, w, s))
    lt_all(gemm, x, n, topk_ids, topk_weights, top_k, w, workspace, out, s, true);
  else
    moe_experts(x, n, topk_ids, topk_weights, top_k, w, workspace, out, s, always_on);
}

}  // namespace troupe::kernels
