// kernels/gemm small-m path (m <= 16, small_m.hpp) against float64 host matmuls, through a Gemm told to use
// it up to m = 16 (the shapes must take it: checked with the same plan() the Gemm uses). Shapes: n not a
// multiple of 128 (576, 200, 72), k = 7168 / 1536 / 512, every m in 1..16, FP8 and bf16 weights, float32
// accumulate and bf16 accumulate outputs. Also: split-K results are bitwise reproducible, and a captured
// CUDA graph replays them.
//
// Tolerances as gemm_test.cpp: bf16 inputs are multiples of 1/128, so products are exact in float32 and only
// float32 accumulation and the bf16 output rounding remain; FP8 allows 0.5% of the output RMS (the tensor
// cores' reduced-precision accumulation within a 128-wide block) plus bf16 rounding.
#include "kernels/gemm/gemm.hpp"
#include "kernels/gemm/small_m.hpp"
#include "tests/kernels/device_util.hpp"
#include "tests/kernels/kernel_test.hpp"

#include <cmath>
#include <string>

namespace troupe::kernel_test {
namespace {

using kernels::Gemm;
using kernels::OutType;
using bf16 = __nv_bfloat16;
using fp8 = __nv_fp8_e4m3;

struct NK { int n, k; };
const NK kShapes[] = {{576, 7168}, {200, 1536}, {72, 512}, {1536, 7168}, {3072, 2048}};

std::string name(const char* what, int m, NK s) {
  return std::string(what) + " m=" + std::to_string(m) + " n=" + std::to_string(s.n) + " k=" + std::to_string(s.k);
}

// The Gemm's own decision for this shape (32 MiB workspace, 4096 counters, this GPU's SMs).
bool small_path(int m, NK s, int elem_bytes) {
  kernels::small_m::Workspace ws;
  ws.partials = reinterpret_cast<float*>(16);
  ws.partial_bytes = std::size_t(32) << 20;
  ws.counter_slots = 4096;
  return kernels::small_m::plan(m, s.n, s.k, elem_bytes, sm_count(), ws).ok;
}

std::vector<std::uint16_t> bf16_grid(std::size_t n, std::vector<float>& f, Rng& rng) {  // multiples of 1/128
  std::vector<std::uint16_t> v(n);
  f.resize(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = float_to_bf16(f[i] = float(rng.integer(-128, 127)) / 128.0f);
  return v;
}

KERNEL_TEST(gemm_small_m_plan) {
  kernels::small_m::Workspace ws;
  ws.partials = reinterpret_cast<float*>(16), ws.partial_bytes = std::size_t(32) << 20, ws.counter_slots = 4096;
  for (int e : {1, 2})
    for (int m : {1, 16})
      for (NK s : {NK{576, 7168}, NK{36864, 7168}, NK{7168, 18432}, NK{64, 128}, NK{24576, 1536}}) {
        const auto p = kernels::small_m::plan(m, s.n, s.k, e, 132, ws);
        const int kbs = s.k / 128;
        check(p.ok, name("plan ok", m, s).c_str());
        check(p.kb_per * 128 * e <= kernels::small_m::kMaxChunkBytes, name("plan chunk fits smem", m, s).c_str());
        check(p.splits * p.kb_per >= kbs && (p.splits - 1) * p.kb_per < kbs, name("splits cover k once", m, s).c_str());
      }
  check(!kernels::small_m::plan(17, 576, 7168, 1, 132, ws).ok, "plan refuses m = 17");
  check(!kernels::small_m::plan(1, 576, 7000, 1, 132, ws).ok, "plan refuses k % 128 != 0");
  ws.partial_bytes = 1024;
  check(!kernels::small_m::plan(16, 576, 7168, 1, 132, ws).ok, "plan refuses partials beyond the workspace");
}

KERNEL_TEST(gemm_small_m_fp8) {
  Gemm gemm;
  gemm.set_small_m_max(16, 16);  // whatever the default crossovers, these tests are about the small-m kernels
  Rng rng(31);
  for (NK s : kShapes) {
    const int kb = s.k / 128;
    const Fp8BlockWeights w(s.n, s.k, rng);
    for (int m = 1; m <= 16; m += (s.n * double(s.k) > 4e6 ? 5 : 1)) {  // big shapes: m = 1, 6, 11, 16
      check(small_path(m, s, 1), name("fp8 shape takes the small-m path", m, s).c_str());
      const auto aq = fp8_codes(std::size_t(m) * s.k, rng);
      const auto as = rng.floats(std::size_t(m) * kb, 0.5f / 16, 2.0f / 16);
      const auto af = decode_fp8(aq);
      Dev<std::uint8_t> a(aq);
      Dev<float> das(as);
      Dev<std::uint16_t> c(std::size_t(m) * s.n);
      gemm.fp8_block(a.as<fp8>(), das.get(), w.codes.as<fp8>(), w.dev_scales.get(), c.as<bf16>(), m, s.n, s.k, nullptr);
      const auto ch = c.host();
      std::vector<float> got, want;
      double ss = 0;
      for (int r = 0; r < m; ++r)
        for (int j = 0; j < s.n; ++j) {
          const double acc = fp8_block_ref(af, as, w.values, w.scales, s.k, r, j);
          want.push_back(float(acc));
          got.push_back(bf16_to_float(ch[std::size_t(r) * s.n + j]));
          ss += acc * acc;
        }
      const float rms = float(std::sqrt(ss / want.size()));
      check_close(name("small-m fp8", m, s).c_str(), got, want, 5e-3f * rms, 1.0f / 256);
    }
  }
}

// bf16 weights; m cycles through bf16 output, float32 accumulate (the residual add) and bf16 accumulate.
KERNEL_TEST(gemm_small_m_bf16) {
  Gemm gemm;
  gemm.set_small_m_max(16, 16);  // whatever the default crossovers, these tests are about the small-m kernels
  Rng rng(37);
  for (NK s : kShapes) {
    std::vector<float> wf;
    Dev<std::uint16_t> w(bf16_grid(std::size_t(s.n) * s.k, wf, rng));
    for (int m = 1; m <= 16; m += (s.n * double(s.k) > 4e6 ? 5 : 1)) {
      check(small_path(m, s, 2), name("bf16 shape takes the small-m path", m, s).c_str());
      std::vector<float> af;
      Dev<std::uint16_t> a(bf16_grid(std::size_t(m) * s.k, af, rng));
      const OutModes out(m % 3, std::size_t(m) * s.n, rng);
      gemm.bf16(a.as<bf16>(), w.as<bf16>(), out.ptr(), out.out_f32() ? OutType::f32 : OutType::bf16, m, s.n, s.k,
                nullptr, out.accumulate());
      const auto got = out.result();
      const int mode = out.mode;
      std::vector<float> want;
      for (int r = 0; r < m; ++r)
        for (int j = 0; j < s.n; ++j) {
          double acc = out.start(std::size_t(r) * s.n + j);
          for (int e = 0; e < s.k; ++e) acc += double(af[std::size_t(r) * s.k + e]) * wf[std::size_t(j) * s.k + e];
          want.push_back(float(acc));
        }
      const char* what = mode == 0   ? "small-m bf16"
                         : mode == 1 ? "small-m bf16 (f32 accumulate)"
                                     : "small-m bf16 (bf16 accumulate)";
      check_close(name(what, m, s).c_str(), got, want, 1e-3f + 1e-6f * s.k, mode == 1 ? 1e-5f : 1.0f / 256);
    }
  }
}

// Split-K sums in a fixed order: two calls give the same bits, and a graph replay (counters reset by the
// kernel itself) gives them again.
KERNEL_TEST(gemm_small_m_deterministic_and_graph_safe) {
  Gemm gemm;
  gemm.set_small_m_max(16, 16);  // whatever the default crossovers, these tests are about the small-m kernels
  Rng rng(41);
  const int m = 4, n = 576, k = 7168;
  std::vector<float> f;
  Dev<std::uint16_t> w(bf16_grid(std::size_t(n) * k, f, rng)), a(bf16_grid(std::size_t(m) * k, f, rng));
  Dev<std::uint16_t> c(std::size_t(m) * n);
  gemm.bf16(a.as<bf16>(), w.as<bf16>(), c.get(), OutType::bf16, m, n, k, nullptr);
  const auto first = c.host();
  gemm.bf16(a.as<bf16>(), w.as<bf16>(), c.get(), OutType::bf16, m, n, k, nullptr);
  check(c.host() == first, "small-m split-K is bitwise reproducible");
  cudaStream_t s;
  cuda_ok(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "stream");
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  cuda_ok(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), "begin capture");
  gemm.bf16(a.as<bf16>(), w.as<bf16>(), c.get(), OutType::bf16, m, n, k, s);
  cuda_ok(cudaStreamEndCapture(s, &graph), "end capture");
  cuda_ok(cudaGraphInstantiate(&exec, graph, 0), "instantiate");
  cuda_ok(cudaMemsetAsync(c.get(), 0, c.size() * 2, s), "clear");
  for (int i = 0; i < 3; ++i) cuda_ok(cudaGraphLaunch(exec, s), "replay");
  cuda_ok(cudaStreamSynchronize(s), "sync");
  check(c.host() == first, "small-m GEMM replays from a CUDA graph");
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaStreamDestroy(s);
}

}  // namespace
}  // namespace troupe::kernel_test
