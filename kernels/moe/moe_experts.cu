// moe_experts: group the batch's (token, choice) entries by expert on the device, then two grouped GEMMs over
// (expert, M tile) work items: gate/up with SiLU*up fused, then down with the weighted scatter-add into `out`.
// Only the experts the batch routes to are read; nothing waits on the host (CUDA-graph safe).
#include "kernels/core/launch.hpp"
#include "kernels/moe/moe.hpp"
#include "kernels/moe/moe_gate_up_flat.cuh"
#include "kernels/moe/moe_gemm.cuh"
#include "kernels/moe/moe_gemv.cuh"
#include "kernels/moe/moe_lt.hpp"
#include "kernels/moe/moe_plan.hpp"
#include "kernels/moe/moe_prefill.cuh"

#include <cub/block/block_scan.cuh>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <utility>

namespace troupe::kernels {

namespace {

using namespace moe_detail;

constexpr int kGroupThreads = 1024, kMaxExperts = 1024;

// One CTA: count entries per expert, scan counts and tile counts, write the M tiles and the permutation.
// Ids outside [0, E) (padding) are dropped. The order inside an expert follows shared-memory atomics; each
// row's result does not depend on it.
__global__ void __launch_bounds__(kGroupThreads) group_kernel(const std::int32_t* ids, int entries, int E, int bm,
                                                              std::int32_t* perm, int4* tiles, int* num_tiles) {
  using Scan = cub::BlockScan<int, kGroupThreads>;
  __shared__ typename Scan::TempStorage scan_tmp;
  __shared__ int cnt[kMaxExperts], off[kMaxExperts], fill[kMaxExperts];
  const int tid = threadIdx.x;
  if (tid < E) cnt[tid] = 0, fill[tid] = 0;
  __syncthreads();
  for (int i = tid; i < entries; i += kGroupThreads) {
    const int e = ids[i];
    if (e >= 0 && e < E) atomicAdd(&cnt[e], 1);
  }
  __syncthreads();
  const int mine = tid < E ? cnt[tid] : 0;
  const int my_tiles = (mine + bm - 1) / bm;
  int row_off = 0, tile_off = 0, total_tiles = 0;
  Scan(scan_tmp).ExclusiveSum(mine, row_off);
  __syncthreads();
  Scan(scan_tmp).ExclusiveSum(my_tiles, tile_off, total_tiles);
  if (tid < E) off[tid] = row_off;
  for (int j = 0; j < my_tiles; ++j) tiles[tile_off + j] = make_int4(tid, row_off + j * bm, min(bm, mine - j * bm), 0);
  if (tid == 0) *num_tiles = total_tiles;
  __syncthreads();
  for (int i = tid; i < entries; i += kGroupThreads) {
    const int e = ids[i];
    if (e >= 0 && e < E) perm[off[e] + atomicAdd(&fill[e], 1)] = i;
  }
}

template <int BM, int BN, int WK, bool FP8, bool GATE_UP, int STAGES, bool SPLITK = false>
void launch_gemm(const GemmArgs& a, int grid_x, int splits, cudaStream_t s) {
  using C = GemmCfg<BM, BN, WK, FP8, GATE_UP, STAGES>;
  auto kernel = moe_gemm_kernel<BM, BN, WK, FP8, GATE_UP, STAGES, SPLITK>;
  static std::atomic<std::uint64_t> done{0};
  opt_in_smem(kernel, C::SMEM, done);
  const int cols_per_cta = GATE_UP ? BN / 2 : BN;
  const dim3 grid(grid_x, (a.N + cols_per_cta - 1) / cols_per_cta, splits);
  kernel<<<grid, kGemmThreads, C::SMEM, s>>>(a);
}

template <int BM, int BN, bool FP8, bool GATE_UP>
void launch_prefill(const GemmArgs& a, int grid_x, cudaStream_t s) {
  using C = PfCfg<BM, BN, FP8>;
  auto kernel = moe_prefill_kernel<BM, BN, FP8, GATE_UP>;
  static std::atomic<std::uint64_t> done{0};
  opt_in_smem(kernel, C::SMEM, done);
  const int cols_per_cta = GATE_UP ? BN / 2 : BN, n_tiles = (a.N + cols_per_cta - 1) / cols_per_cta;
  const dim3 grid = a.n_fastest ? dim3(n_tiles, grid_x) : dim3(grid_x, n_tiles);
  kernel<<<grid, kPfThreads, C::SMEM, s>>>(a);
}

// For A/B timings: TROUPE_MOE_LEGACY_PREFILL=1 keeps prefill batches on the 64 x 64 tiles of moe_gemm.cuh;
// TROUPE_MOE_PREFILL_BN=256 picks moe_prefill.cuh's 256-column tiles instead of 128 (one CTA per SM: slower on
// the H200); TROUPE_MOE_PREFILL_M_FASTEST=1 launches M tiles fastest instead of N tiles;
// TROUPE_MOE_PREFILL_BM=128 takes 128-row tiles for every prefill batch (choose_bm's threshold aside).
bool legacy_prefill() {
  static const bool on = env_is("TROUPE_MOE_LEGACY_PREFILL", "1");
  return on;
}
bool prefill_bn256() {
  static const bool on = env_is("TROUPE_MOE_PREFILL_BN", "256");
  return on;
}

template <int BM, bool FP8>
void run_prefill(const GemmArgs& up, const GemmArgs& down, int grid_x, cudaStream_t s) {
  if (prefill_bn256()) {
    launch_prefill<BM, 256, FP8, true>(up, grid_x, s);
    launch_prefill<BM, 256, FP8, false>(down, grid_x, s);
  } else {
    launch_prefill<BM, 128, FP8, true>(up, grid_x, s);
    launch_prefill<BM, 128, FP8, false>(down, grid_x, s);
  }
}

// Decode tiles (BM 16: gate/up with warps splitting K and, for a handful of experts, CTAs splitting K too;
// down with 128 columns per CTA, as its K (inter) is short) or prefill tiles (moe_prefill.cuh: BM 128 or 64 x
// BN 128 B rows; the legacy BM 64 x 64 tiles of moe_gemm.cuh when legacy_prefill()).
template <bool FP8>
void run_gemms(GemmArgs up, GemmArgs down, int bm, int grid_x, int ksplit, int entries, cudaStream_t s) {
  if (bm == kBmDecode) {
    if (ksplit > 1) {
      launch_gemm<16, 32, 4, FP8, true, 6, true>(up, grid_x, ksplit, s);
      silu_mul_kernel<<<std::min(1024, (entries * up.inter + 255) / 256), 256, 0, s>>>(up.gate_up, entries, up.inter,
                                                                                       up.h);
    } else {
      launch_gemm<16, 32, 4, FP8, true, 6>(up, grid_x, 1, s);
    }
    launch_gemm<16, 128, 1, FP8, false, 3>(down, grid_x, 1, s);
  } else if (legacy_prefill()) {
    launch_gemm<64, 64, 1, FP8, true, 3>(up, grid_x, 1, s);
    launch_gemm<64, 64, 1, FP8, false, 3>(down, grid_x, 1, s);
  } else if (bm == kBmPrefillWide) {
    run_prefill<kBmPrefillWide, FP8>(up, down, grid_x, s);
  } else {
    run_prefill<kBmPrefill, FP8>(up, down, grid_x, s);
  }
}

int sm_count() {
  int dev = 0, n = 0;
  cudaGetDevice(&dev);
  cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev);
  return n > 0 ? n : 1;
}

void validate(int n, int top_k, const MoeWeights& w) {
  auto fail = [](const std::string& m) { throw std::invalid_argument("moe_experts: " + m); };
  if (n < 0 || top_k <= 0) fail("n must be >= 0 and top_k > 0");
  if (w.num_experts <= 0 || w.num_experts > kMaxExperts) fail("num_experts must be in 1..1024");
  if (w.hidden <= 0 || w.inter <= 0 || w.hidden % 16 || w.inter % 16)
    fail("hidden and inter must be positive multiples of 16");
  if (!w.w13 || !w.w2) fail("missing expert weights");
  if (w.fp8 && (!w.w13_scale || !w.w2_scale)) fail("FP8 experts need w13_scale and w2_scale");
}

// Batches of at most this many tokens take the GEMV kernels (moe_gemv.cuh): default 1 (a second token on the
// same expert would read its weights twice). TROUPE_MOE_GEMV_TOKENS=0: never (A/B).
int gemv_max_tokens() {
  static const int v = env_int("TROUPE_MOE_GEMV_TOKENS", 1);
  return v;
}

// The down GEMV's h rows (+ the flat kernel's partials; H200: 227 KiB per block at most).
constexpr int kGemvMaxSmem = 200 * 1024;

// TROUPE_MOE_DOWN_FLAT=0 keeps the FP8 down GEMV on gemv_down_kernel (A/B).
bool down_flat() {
  static const bool on = !env_is("TROUPE_MOE_DOWN_FLAT", "0");
  return on;
}

// gemv_down_flat_kernel (FP8 rows of up to 8 chunks per lane, h and the partials in shared memory); false: the
// shape is not for it.
bool run_down_flat(const GemvArgs& a, int n, cudaStream_t s) {
  const int per_lane = (a.inter / 16 + 31) / 32;
  const int blocks = std::min(sm_count(), a.hidden), rows = (a.hidden + blocks - 1) / blocks;
  const std::size_t smem = (std::size_t(a.top_k) * a.inter * 2 + 15) / 16 * 16 + std::size_t(rows) * a.top_k * 4;
  if (!down_flat() || per_lane > 8 || smem > kGemvMaxSmem) return false;
  // Rows of 4 chunks per lane (R1 / V3's inter 2048) run warps of one item per round instead of 16 of two (ncu:
  // 16 warps issued 39% of the time, few stalls each; with 32 warps, R1 MoE layer 0.210-0.225 -> 0.209-0.214 ms,
  // alternating runs; TROUPE_MOE_DOWN_WIDE=0: 16 warps), 24 warps with three rounds in flight (147 KB per SM, 80
  // registers a thread) rather than 32 with two (128 KB): R1 8 layers 1.933-1.935 against 1.950-1.962 ms, the
  // o_proj through it 36.8 -> 34.8 us (TROUPE_MOE_DOWN_SETS=2: 32 warps, two rounds).
  static const bool wide_on = !env_is("TROUPE_MOE_DOWN_WIDE", "0");
  static const bool sets2 = env_is("TROUPE_MOE_DOWN_SETS", "2");
  const int v = per_lane <= 1 ? 0 : per_lane <= 2 ? 1 : per_lane > 4 ? 3 : !wide_on ? 2 : sets2 ? 5 : 4;
  auto* kernel = v == 0   ? gemv_down_flat_kernel<1>
                 : v == 1 ? gemv_down_flat_kernel<2>
                 : v == 2 ? gemv_down_flat_kernel<4>
                 : v == 3 ? gemv_down_flat_kernel<8>
                 : v == 4 ? gemv_down_flat_kernel<4, kFlatWideThreads, 1, 3>
                          : gemv_down_flat_kernel<4, 1024, 1>;
  static std::atomic<std::uint64_t> done[6] = {};  // one opt-in per kernel
  opt_in_smem(kernel, kGemvMaxSmem, done[v]);
  const int threads = v == 4 ? kFlatWideThreads : v == 5 ? 1024 : kFlatThreads;
  launch_pdl(kernel, dim3(blocks, n), dim3(threads), smem, s, "moe down GEMV", a);
  return true;
}

// gemv_gate_up_flat_kernel for one FP8 token (moe_gate_up_flat.cuh); false: the shape is not for it.
// TROUPE_MOE_GATE_UP_FLAT=0 keeps gemv_gate_up_kernel (A/B).
bool run_gate_up_flat(const GemvArgs& a, int n, cudaStream_t s, const char* what) {
  static const bool on = !env_is("TROUPE_MOE_GATE_UP_FLAT", "0");
  if (!on || n != 1 || a.hidden % 16 != 0 || a.inter <= 0) return false;
  const int pieces = gate_up_flat_pieces(a.hidden, kGateUpFlatCpl);
  // Blocks hold whole SMs: with always-on slots one SM is left to moe_route, which runs while their items do. As
  // few blocks as the same rows per block need: R1's 2048 rows as 128 x 16, not 131 blocks of 15 or 16 (the
  // blocks of 16 rows would set the kernel's end).
  const int most = std::max(1, sm_count() - (a.always_on ? 1 : 0)), per = (a.inter + most - 1) / most;
  const int blocks = (a.inter + per - 1) / per;
  const std::size_t smem = gate_up_flat_smem(a.hidden, per, a.top_k, pieces);
  if (smem > kGemvMaxSmem) return false;
  static std::atomic<std::uint64_t> done{0};
  opt_in_smem(gemv_gate_up_flat_kernel<kGateUpFlatCpl>, kGemvMaxSmem, done);
  launch_pdl(gemv_gate_up_flat_kernel<kGateUpFlatCpl>, dim3(blocks), dim3(kGateUpFlatThreads), smem, s, what, a,
             pieces);
  return true;
}

template <bool FP8>
void run_gemv(const GemvArgs& a, int n, cudaStream_t s) {
  if (!FP8 || !run_gate_up_flat(a, n, s, "moe gate/up GEMV"))
    launch_pdl(gemv_gate_up_kernel<FP8>, dim3((a.inter + kGemvWarps - 1) / kGemvWarps, n * a.top_k),
               dim3(kGemvWarps * 32), 0, s, "moe gate/up GEMV", a);
  if (FP8 && run_down_flat(a, n, s)) return;
  const std::size_t smem = std::size_t(a.top_k) * a.inter * 2;
  static std::atomic<std::uint64_t> done{0};
  opt_in_smem(gemv_down_kernel<FP8>, kGemvMaxSmem, done);  // the cap, once: smem varies with the model
  launch_pdl(gemv_down_kernel<FP8>, dim3((a.hidden + kGemvWarps - 1) / kGemvWarps, n), dim3(kGemvWarps * 32), smem, s,
             "moe down GEMV", a);
}

// The single-token path: true when it ran.
bool try_gemv(const __nv_bfloat16* x, int n, const std::int32_t* topk_ids, const float* topk_weights, int top_k,
              int always_on, const MoeWeights& w, __nv_bfloat16* h, float* out, cudaStream_t s) {
  if (n > gemv_max_tokens() || std::size_t(top_k) * w.inter * 2 > kGemvMaxSmem) return false;  // h in shared memory
  GemvArgs a{x, topk_ids, topk_weights, top_k, w.num_experts, w.hidden, w.inter, w.w13, w.w2,
             w.w13_scale, w.w2_scale, h, out};
  a.always_on = n == 1 && always_on > 0 && always_on <= top_k && always_on <= w.num_experts ? always_on : 0;
  if (w.fp8)
    run_gemv<true>(a, n, s);
  else
    run_gemv<false>(a, n, s);
  return true;
}

// The slices' "expert ids" 0, 1, ... and their weights for gemv_fp8_flat_residual.
__device__ const std::int32_t g_slice_ids[kFlatMaxSlices] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
__device__ const float g_slice_ones[kFlatMaxSlices] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};

// Their device addresses, looked up once (the eager decode step calls these functions every layer).
std::pair<const std::int32_t*, const float*> slice_table() {
  static const auto table = [] {
    void *i = nullptr, *o = nullptr;
    check_cuda(cudaGetSymbolAddress(&i, g_slice_ids), "flat GEMV slice ids");
    check_cuda(cudaGetSymbolAddress(&o, g_slice_ones), "flat GEMV slice weights");
    return std::pair{static_cast<const std::int32_t*>(i), static_cast<const float*>(o)};
  }();
  return table;
}

}  // namespace

bool gemv_fp8_flat_residual(const __nv_bfloat16* x, const __nv_fp8_e4m3* w, const float* w_scale, int hidden, int k,
                            float* out, cudaStream_t s) {
  static const bool on = !env_is("TROUPE_FLAT_RESIDUAL", "0");
  const int slices = k / kFlatSlice;
  if (!on || hidden <= 0 || k % kFlatSlice != 0 || slices < 1 || slices > kFlatMaxSlices) return false;
  const auto ids = slice_table();
  //   W row j:  | slice 0 (2048) | slice 1 | ... |   "expert" e's row j = W + e * 2048 + j * k
  //   x:        | h row 0        | h row 1 | ... |   the token's h rows, entry e = slice e
  GemvArgs a{x, ids.first, ids.second, slices, slices, hidden, kFlatSlice, nullptr, w, nullptr, w_scale,
             const_cast<__nv_bfloat16*>(x), out};
  a.w2_e = kFlatSlice, a.w2_j = std::size_t(k);
  a.s2_e = kFlatSlice / 128, a.s2_j = k / 128;
  if (!run_down_flat(a, 1, s)) return false;
  check_launch("gemv_fp8_flat_residual");
  return true;
}

bool gemv_fp8_gate_up_silu(const __nv_bfloat16* x, const __nv_fp8_e4m3* w, const float* w_scale, int inter,
                           int hidden, __nv_bfloat16* h, cudaStream_t s) {
  static const bool on = !env_is("TROUPE_DENSE_GATE_UP_GEMV", "0");
  if (!on || inter <= 0 || inter % 128 != 0 || hidden <= 0 || hidden % 16 != 0) return false;
  GemvArgs a{x, slice_table().first, nullptr, 1, 1, hidden, inter, w, nullptr, w_scale, nullptr, h, nullptr};
  if (run_gate_up_flat(a, 1, s, "dense gate/up GEMV")) return true;
  launch_pdl(gemv_gate_up_kernel<true>, dim3((inter + kGemvWarps - 1) / kGemvWarps, 1), dim3(kGemvWarps * 32), 0, s,
             "dense gate/up GEMV", a);
  return true;
}

std::size_t moe_workspace_bytes(int max_tokens, int top_k, const MoeWeights& w) {
  // moe_experts_auto runs one path or the other in the same workspace
  const std::size_t lt = moe_lt_pays(max_tokens, top_k, w) ? moe_lt_workspace_bytes(max_tokens, top_k, w) : 0;
  return std::max(moe_layout(max_tokens, top_k, w.num_experts, w.inter).total, lt);
}

void moe_experts(const __nv_bfloat16* x, int n, const std::int32_t* topk_ids, const float* topk_weights, int top_k,
                 const MoeWeights& w, void* workspace, float* out, cudaStream_t s, int always_on) {
  validate(n, top_k, w);
  if (n == 0) return;
  if (!workspace) throw std::invalid_argument("moe_experts: workspace is null (moe_workspace_bytes)");
  const int entries = n * top_k;
  int bm = choose_bm(n, top_k, w.num_experts);
  if (bm == kBmPrefillWide && legacy_prefill()) bm = kBmPrefill;
  static const bool force_wide = env_is("TROUPE_MOE_PREFILL_BM", "128");  // A/B: 128-row tiles whenever prefill
  if (bm == kBmPrefill && force_wide && !legacy_prefill()) bm = kBmPrefillWide;
  const MoeLayout l = moe_layout(n, top_k, w.num_experts, w.inter);
  auto* base = static_cast<unsigned char*>(workspace);
  auto* perm = reinterpret_cast<std::int32_t*>(base + l.perm);
  auto* tiles = reinterpret_cast<int4*>(base + l.tiles);
  auto* num_tiles = reinterpret_cast<int*>(base + l.num_tiles);
  auto* h = reinterpret_cast<__nv_bfloat16*>(base + l.h);
  auto* gate_up = reinterpret_cast<float*>(base + l.gate_up);
  if (try_gemv(x, n, topk_ids, topk_weights, top_k, always_on, w, h, out, s)) {
    const cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) throw std::runtime_error(std::string("moe_experts (gemv): ") + cudaGetErrorString(e));
    return;
  }
  group_kernel<<<1, kGroupThreads, 0, s>>>(topk_ids, entries, w.num_experts, bm, perm, tiles, num_tiles);

  const int inter_blocks = (w.inter + 127) / 128, hidden_blocks = (w.hidden + 127) / 128;
  GemmArgs up{};
  up.a_src = x;
  up.w = w.w13;
  up.scale = w.w13_scale;
  up.N = w.inter;
  up.K = w.hidden;
  up.inter = w.inter;
  up.scale_nb = 2 * inter_blocks;
  up.scale_kb = hidden_blocks;
  up.up_block0 = inter_blocks;
  up.perm = perm;
  up.tiles = tiles;
  up.num_tiles = num_tiles;
  up.top_k = top_k;
  up.h = h;
  static const bool m_fastest = env_is("TROUPE_MOE_PREFILL_M_FASTEST", "1");
  up.n_fastest = m_fastest ? 0 : 1;
  static const int forced_ksplit = [] {  // TROUPE_MOE_DECODE_KSPLIT=N: every decode batch splits K N ways (A/B)
    const char* v = std::getenv("TROUPE_MOE_DECODE_KSPLIT");
    return v && *v ? std::max(1, std::atoi(v)) : 0;
  }();
  const int ksplit = bm != kBmDecode                ? 1
                     : forced_ksplit && entries <= kSplitKMaxEntries ? forced_ksplit
                     : choose_ksplit(entries, w.num_experts, w.hidden, w.inter, sm_count());
  up.gate_up = gate_up;
  up.ktiles_per_split = ((w.hidden + 127) / 128 + ksplit - 1) / ksplit;
  if (ksplit > 1)
    cudaMemsetAsync(gate_up, 0, std::size_t(entries) * 2 * w.inter * sizeof(float), s);
  GemmArgs down = up;
  down.a_src = h;
  down.w = w.w2;
  down.scale = w.w2_scale;
  down.N = w.hidden;
  down.K = w.inter;
  down.scale_nb = hidden_blocks;
  down.scale_kb = inter_blocks;
  down.up_block0 = 0;
  down.out = out;
  down.topk_weights = topk_weights;
  const int grid_x = max_tiles(entries, w.num_experts, bm);
  if (w.fp8)
    run_gemms<true>(up, down, bm, grid_x, ksplit, entries, s);
  else
    run_gemms<false>(up, down, bm, grid_x, ksplit, entries, s);
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) throw std::runtime_error(std::string("moe_experts: ") + cudaGetErrorString(e));
}

}  // namespace troupe::kernels
