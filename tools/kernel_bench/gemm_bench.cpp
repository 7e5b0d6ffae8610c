// kernels/gemm through cuBLASLt: DeepSeek-V3 projections in bf16 and FP8 (128x128 weight blocks, 1x128
// activation groups), Llama-3-8B projections in bf16, and MLA's per-head absorption (batched).
// Bytes: weights + activations + output, each once; FLOPs: 2 m n k.
#include "kernels/gemm/gemm.hpp"
#include "kernels/gemm/gemv.hpp"
#include "tools/kernel_bench/kernel_bench.hpp"

#include <string>

namespace troupe::kernel_bench {
namespace {

struct Shape { int n, k; const char* name; };
const Shape kV3[] = {{1536, 7168, "V3 q_a"}, {576, 7168, "V3 kv_a"}, {24576, 1536, "V3 q_b"}, {7168, 16384, "V3 o_proj"},
                     {36864, 7168, "V3 dense gate_up"}, {7168, 18432, "V3 dense down"}};
const Shape kLlama[] = {{6144, 4096, "L8B qkv"}, {28672, 4096, "L8B gate_up"}, {4096, 14336, "L8B down"}};
const int kMs[] = {1, 16, 64, 256, 4096};

std::string label(const Shape& s, int m) {
  return std::string(s.name) + " m=" + std::to_string(m) + " " + std::to_string(s.n) + "x" + std::to_string(s.k);
}

KERNEL_BENCH(gemm_bf16) {
  kernels::Gemm gemm;
  auto run = [&](const Shape& s) {
    Buffer w(std::size_t(s.n) * s.k * 2), a(std::size_t(4096) * s.k * 2), c(std::size_t(4096) * s.n * 2);
    fill_bf16(w.as<void>(), std::size_t(s.n) * s.k, -1, 1, 1);
    fill_bf16(a.as<void>(), std::size_t(4096) * s.k, -1, 1, 2);
    for (int m : kMs) {
      const double bytes = 2.0 * (double(s.n) * s.k + double(m) * s.k + double(m) * s.n);
      bench.time("gemm bf16", label(s, m), bytes, 2.0 * m * s.n * s.k, Peak::bf16, [&](cudaStream_t st) {
        gemm.bf16(a.as<__nv_bfloat16>(), w.as<__nv_bfloat16>(), c.as<void>(), kernels::OutType::bf16, m, s.n, s.k, st);
      });
    }
  };
  for (const Shape& s : kV3) run(s);
  for (const Shape& s : kLlama) run(s);
}

KERNEL_BENCH(gemm_fp8_block) {
  kernels::Gemm gemm;
  for (const Shape& s : kV3) {
    const int kb = s.k / 128, nb = (s.n + 127) / 128;
    Buffer w(std::size_t(s.n) * s.k), ws(std::size_t(nb) * kb * 4), a(std::size_t(4096) * s.k),
        as(std::size_t(4096) * kb * 4), c(std::size_t(4096) * s.n * 2);
    fill_fp8(w.as<void>(), std::size_t(s.n) * s.k, 1);
    fill_fp8(a.as<void>(), std::size_t(4096) * s.k, 2);
    fill_f32(ws.as<float>(), std::size_t(nb) * kb, 0.005f, 0.02f, 3);
    fill_f32(as.as<float>(), std::size_t(4096) * kb, 0.02f, 0.1f, 4);
    for (int m : kMs) {
      const double bytes = double(s.n) * s.k + double(m) * s.k + 2.0 * m * s.n + 4.0 * (nb * kb + m * kb);
      bench.time("gemm fp8 block", label(s, m), bytes, 2.0 * m * s.n * s.k, Peak::fp8, [&](cudaStream_t st) {
        gemm.fp8_block(a.as<__nv_fp8_e4m3>(), as.as<float>(), w.as<__nv_fp8_e4m3>(), ws.as<float>(),
                       c.as<__nv_bfloat16>(), m, s.n, s.k, st);
      });
    }
  }
}

// Decode sizes, small-m kernels against cuBLASLt (Gemm::set_small_m_max(0)) on the same buffers: R1/V3 and
// V2-Lite projections at m = 1, 4, 8, 16, FP8 block-scaled and bf16 weights. Bytes as above.
const Shape kDecode[] = {{1536, 7168, "V3 q_a"},           {576, 7168, "V3 kv_a"},
                         {2112, 7168, "V3 q_a+kv_a"},      {24576, 1536, "V3 q_b"},
                         {7168, 16384, "V3 o_proj"},       {36864, 7168, "V3 dense gate_up"},
                         {7168, 18432, "V3 dense down"},   {3072, 2048, "V2L q"},
                         {2048, 2048, "V2L o"},            {5632, 2048, "V2L shared gate_up"}};

KERNEL_BENCH(gemm_small_m) {
  kernels::Gemm gemm;
  for (const Shape& s : kDecode) {
    const int kb = s.k / 128, nb = (s.n + 127) / 128;
    Buffer w(std::size_t(s.n) * s.k * 2), w8(std::size_t(s.n) * s.k), ws(std::size_t(nb) * kb * 4),
        a(std::size_t(16) * s.k * 2), a8(std::size_t(16) * s.k), as(std::size_t(16) * kb * 4),
        c(std::size_t(16) * s.n * 2);
    fill_bf16(w.as<void>(), std::size_t(s.n) * s.k, -1, 1, 1);
    fill_fp8(w8.as<void>(), std::size_t(s.n) * s.k, 5);
    fill_bf16(a.as<void>(), std::size_t(16) * s.k, -1, 1, 2);
    fill_fp8(a8.as<void>(), std::size_t(16) * s.k, 6);
    fill_f32(ws.as<float>(), std::size_t(nb) * kb, 0.005f, 0.02f, 3);
    fill_f32(as.as<float>(), std::size_t(16) * kb, 0.02f, 0.1f, 4);
    for (int m : {1, 4, 8, 16})
      for (int small : {1, 0}) {
        gemm.set_small_m_max(small ? 16 : 0, small ? 16 : 0);
        const std::string who = small ? "small-m" : "cuBLASLt";
        const double fp8_bytes = double(s.n) * s.k + double(m) * s.k + 2.0 * m * s.n + 4.0 * (nb * kb + m * kb);
        bench.time(who + " fp8", label(s, m), fp8_bytes, 2.0 * m * s.n * s.k, Peak::fp8, [&](cudaStream_t st) {
          gemm.fp8_block(a8.as<__nv_fp8_e4m3>(), as.as<float>(), w8.as<__nv_fp8_e4m3>(), ws.as<float>(),
                         c.as<__nv_bfloat16>(), m, s.n, s.k, st);
        });
        const double bf16_bytes = 2.0 * (double(s.n) * s.k + double(m) * s.k + double(m) * s.n);
        bench.time(who + " bf16", label(s, m), bf16_bytes, 2.0 * m * s.n * s.k, Peak::bf16, [&](cudaStream_t st) {
          gemm.bf16(a.as<__nv_bfloat16>(), w.as<__nv_bfloat16>(), c.as<void>(), kernels::OutType::bf16, m, s.n, s.k, st);
        });
      }
  }
}

// The decode GEMVs (kernels/gemm/gemv.hpp: bf16 activations, no quantization launch) at m = 1, 2, 4 on the
// small-m shapes; compare with gemm_small_m's rows (whose FP8 time leaves out the activation quantization the
// GEMM path also needs).
KERNEL_BENCH(gemv) {
  int dev = 0, sms = 0;
  cudaGetDevice(&dev);
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
  for (const Shape& s : kDecode) {
    const int kb = s.k / 128, nb = (s.n + 127) / 128;
    Buffer w(std::size_t(s.n) * s.k * 2), w8(std::size_t(s.n) * s.k), ws(std::size_t(nb) * kb * 4),
        a(std::size_t(4) * s.k * 2), c(std::size_t(4) * s.n * 2);
    fill_bf16(w.as<void>(), std::size_t(s.n) * s.k, -1, 1, 1);
    fill_fp8(w8.as<void>(), std::size_t(s.n) * s.k, 5);
    fill_bf16(a.as<void>(), std::size_t(4) * s.k, -1, 1, 2);
    fill_f32(ws.as<float>(), std::size_t(nb) * kb, 0.005f, 0.02f, 3);
    for (int m : {1, 2, 4}) {
      const auto p8 = kernels::gemv::plan(m, s.n, s.k, 1, sms), p16 = kernels::gemv::plan(m, s.n, s.k, 2, sms);
      const std::string rs = " R" + std::to_string(p8.rows) + "S" + std::to_string(p8.splits);
      const double fp8_bytes = double(s.n) * s.k + 2.0 * m * s.k + 2.0 * m * s.n + 4.0 * nb * kb;
      bench.time("gemv fp8", label(s, m) + rs, fp8_bytes, 2.0 * m * s.n * s.k, Peak::memory, [&](cudaStream_t st) {
        kernels::gemv::fp8(a.as<__nv_bfloat16>(), w8.as<__nv_fp8_e4m3>(), ws.as<float>(), c.as<__nv_bfloat16>(), m,
                           s.n, s.k, p8, st);
      });
      const double bf16_bytes = 2.0 * (double(s.n) * s.k + double(m) * s.k + double(m) * s.n);
      bench.time("gemv bf16", label(s, m), bf16_bytes, 2.0 * m * s.n * s.k, Peak::memory, [&](cudaStream_t st) {
        kernels::gemv::bf16(a.as<__nv_bfloat16>(), w.as<__nv_bfloat16>(), c.as<void>(), false, false, m, s.n, s.k,
                            p16, st);
      });
    }
  }
}

// V3 decode absorption, 128 heads: q_nope [m, 128, 128] x W_UK_h [128, 512]; o_lat [m, 128, 512] x W_UV_h^T.
KERNEL_BENCH(gemm_bf16_batched) {
  kernels::Gemm gemm;
  const int heads = 128, nope = 128, v = 128, latent = 512;
  Buffer w(std::size_t(heads) * (nope + v) * latent * 2), a(std::size_t(256) * heads * latent * 2),
      c(std::size_t(256) * heads * latent * 2);
  fill_bf16(w.as<void>(), std::size_t(heads) * (nope + v) * latent, -1, 1, 5);
  fill_bf16(a.as<void>(), std::size_t(256) * heads * latent, -1, 1, 6);
  const auto* wp = w.as<__nv_bfloat16>();
  for (int m : {1, 64, 256}) {
    for (bool uk : {true, false}) {
      const int k = uk ? nope : latent, n = uk ? latent : v;
      const double bytes = 2.0 * (double(heads) * n * k + double(m) * heads * (k + n));
      bench.time(uk ? "gemm batched W_UK" : "gemm batched W_UV", "m=" + std::to_string(m) + " 128 heads", bytes,
                 2.0 * m * heads * n * k, Peak::bf16, [&](cudaStream_t st) {
                   gemm.bf16_batched(a.as<__nv_bfloat16>(), heads * k, k, wp + (uk ? 0 : std::size_t(nope) * latent),
                                     latent, (long long)(nope + v) * latent, c.as<__nv_bfloat16>(), heads * n, n, heads,
                                     m, n, k, uk, st);
                 });
    }
  }
}

}  // namespace
}  // namespace troupe::kernel_bench
