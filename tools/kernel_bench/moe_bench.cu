// MoE: the router and the grouped expert GEMMs. Decode is bounded by the bytes of the experts the batch uses
// (each used expert's w13 and w2 once, plus scales, x and out); prefill by the tensor-core peak (moe_experts' mma
// runs in bf16, FP8 weights widened in shared memory: the bf16 peak; moe_experts_lt's FP8 GEMMs: the FP8 peak).
#include "kernels/gemm/gemm.hpp"
#include "kernels/moe/moe.hpp"
#include "kernels/moe/moe_lt.hpp"
#include "tools/kernel_bench/kernel_bench.hpp"

#include <algorithm>
#include <numeric>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using namespace troupe::kernel_bench;

struct Shape {
  const char* name;
  int E, K, H, I;
  bool fp8;
};

void experts_case(Bench& bench, const Shape& sh, int n) {
  std::mt19937 rng(n);
  std::vector<std::int32_t> ids;
  std::set<int> used;
  for (int t = 0; t < n; ++t) {  // distinct uniform experts per token, as a balanced router gives
    std::vector<int> e(sh.E);
    std::iota(e.begin(), e.end(), 0);
    std::shuffle(e.begin(), e.end(), rng);
    for (int k = 0; k < sh.K; ++k) ids.push_back(e[k]), used.insert(e[k]);
  }
  const std::size_t wbytes = sh.fp8 ? 1 : 2;
  const std::size_t n13 = std::size_t(sh.E) * 2 * sh.I * sh.H, n2 = std::size_t(sh.E) * sh.H * sh.I;
  const int ib = (sh.I + 127) / 128, hb = (sh.H + 127) / 128;
  Buffer w13(n13 * wbytes), w2(n2 * wbytes), s13(std::size_t(sh.E) * 2 * ib * hb * 4),
      s2(std::size_t(sh.E) * hb * ib * 4), x(std::size_t(n) * sh.H * 2), d_ids(ids.size() * 4),
      d_w(ids.size() * 4), out(std::size_t(n) * sh.H * 4);
  if (sh.fp8) {
    fill_fp8(w13.as<void>(), n13, 11), fill_fp8(w2.as<void>(), n2, 12);
    fill_f32(s13.as<float>(), std::size_t(sh.E) * 2 * ib * hb, 1e-3f, 2e-3f, 13);
    fill_f32(s2.as<float>(), std::size_t(sh.E) * hb * ib, 1e-3f, 2e-3f, 14);
  } else {
    fill_bf16(w13.as<void>(), n13, -0.02f, 0.02f, 11), fill_bf16(w2.as<void>(), n2, -0.02f, 0.02f, 12);
  }
  fill_bf16(x.as<void>(), std::size_t(n) * sh.H, -1.f, 1.f, 15);
  fill_f32(d_w.as<float>(), ids.size(), 0.1f, 0.3f, 16);
  cudaMemcpy(d_ids.as<void>(), ids.data(), ids.size() * 4, cudaMemcpyHostToDevice);
  cudaMemset(out.as<void>(), 0, std::size_t(n) * sh.H * 4);
  troupe::kernels::MoeWeights w;
  w.w13 = w13.as<void>(), w.w2 = w2.as<void>(), w.fp8 = sh.fp8;
  w.w13_scale = sh.fp8 ? s13.as<float>() : nullptr, w.w2_scale = sh.fp8 ? s2.as<float>() : nullptr;
  w.num_experts = sh.E, w.hidden = sh.H, w.inter = sh.I;
  Buffer ws(std::max(troupe::kernels::moe_workspace_bytes(n, sh.K, w),
                     troupe::kernels::moe_lt_workspace_bytes(n, sh.K, w)));  // moe_experts_lt runs below any crossover
  const double per_expert = 3.0 * sh.H * sh.I * wbytes + (sh.fp8 ? 3.0 * ib * hb * 4 : 0.0);
  const double bytes = used.size() * per_expert + double(n) * sh.H * (2 + 4 + 4);  // x, out read + written
  const double flops = 2.0 * 3.0 * sh.H * sh.I * double(ids.size());
  const std::string shape = std::string(sh.name) + " n=" + std::to_string(n) + " (" + std::to_string(used.size()) +
                            " experts used)";
  bench.time(sh.fp8 ? "moe_experts fp8" : "moe_experts bf16", shape, bytes, flops, n >= 1024 ? Peak::bf16 : Peak::memory,
             [&](cudaStream_t s) {
               troupe::kernels::moe_experts(x.as<__nv_bfloat16>(), n, d_ids.as<std::int32_t>(), d_w.as<float>(), sh.K,
                                            w, ws.as<void>(), out.as<float>(), s);
             });
  // The cuBLASLt path (moe_lt.hpp) where it has at least 8 rows per used expert; its time includes the host sync.
  if (troupe::kernels::moe_lt_workspace_bytes(n, sh.K, w) == 0 || ids.size() < 8 * used.size()) return;
  troupe::kernels::Gemm gemm;
  auto lt = [&](const char* name, int wgmma_mode) {  // wgmma_mode: moe_lt_use_wgmma's
    const int was = troupe::kernels::moe_lt_use_wgmma(wgmma_mode);
    bench.time(name, shape, bytes, flops, n >= 1024 ? (sh.fp8 ? Peak::fp8 : Peak::bf16) : Peak::memory,
               [&](cudaStream_t s) {
                 troupe::kernels::moe_experts_lt(gemm, x.as<__nv_bfloat16>(), n, d_ids.as<std::int32_t>(),
                                                 d_w.as<float>(), sh.K, w, ws.as<void>(), out.as<float>(), s);
               });
    troupe::kernels::moe_lt_use_wgmma(was);
  };
  if (!sh.fp8) return lt("moe_experts_lt bf16", -1);
  lt("moe_experts_lt fp8", 0);           // one cuBLASLt GEMM per expert on the lanes
  lt("moe_experts_lt fp8 (wgmma)", 1);   // the grouped wgmma GEMMs (moe_wgmma.cuh) on the same batch
}

void route_case(Bench& bench, int n) {
  troupe::kernels::MoeRouting r;
  r.num_experts = 256, r.top_k = 8, r.n_group = 8, r.topk_group = 4, r.routed_scaling_factor = 2.5f;
  Buffer logits(std::size_t(n) * 256 * 4), bias(256 * 4), ids(std::size_t(n) * 8 * 4), wts(std::size_t(n) * 8 * 4);
  fill_f32(logits.as<float>(), std::size_t(n) * 256, -3.f, 3.f, 21);
  fill_f32(bias.as<float>(), 256, -0.1f, 0.1f, 22);
  r.correction_bias = bias.as<float>();
  bench.time("moe_route (R1)", "n=" + std::to_string(n), double(n) * 256 * 4 + double(n) * 8 * 8, 0, Peak::memory,
             [&](cudaStream_t s) {
               troupe::kernels::moe_route(logits.as<float>(), n, r, ids.as<std::int32_t>(), wts.as<float>(), s);
             });
}

}  // namespace

// DeepSeek-R1 experts with TP 8 (inter 2048 / 8), FP8 with 128x128 scales.
KERNEL_BENCH(moe_r1_tp8_fp8) {
  const Shape sh{"R1 TP8 fp8", 256, 8, 7168, 256, true};
  for (int n : {1, 16, 64, 256, 1024, 4096}) experts_case(bench, sh, n);
}

// R1 experts unsharded (expert parallel), 64 of the 256 experts resident.
KERNEL_BENCH(moe_r1_ep_fp8) {
  const Shape sh{"R1 EP fp8 (64 experts)", 64, 8, 7168, 2048, true};
  for (int n : {1, 16}) experts_case(bench, sh, n);
}

// DeepSeek-R1 experts unsharded, all 256 resident (11 GB of FP8): issue 7's R1 prefill shape.
KERNEL_BENCH(moe_r1_full_fp8) {
  const Shape sh{"R1 fp8 (256 experts, inter 2048)", 256, 8, 7168, 2048, true};
  for (int n : {128, 256, 512, 1024, 2048, 4096}) experts_case(bench, sh, n);
}

// DeepSeek-V2-Lite experts, bf16.
KERNEL_BENCH(moe_v2_lite_bf16) {
  const Shape sh{"V2-Lite bf16", 64, 6, 2048, 1408, false};
  for (int n : {1, 64, 256, 512, 1024, 2048, 4096}) experts_case(bench, sh, n);
}

KERNEL_BENCH(moe_route_r1) {
  for (int n : {64, 4096}) route_case(bench, n);
}
