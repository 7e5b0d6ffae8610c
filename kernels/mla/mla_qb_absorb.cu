// mla_qb_absorb (mla_absorb.hpp): q_b's GEMV and W_UK's absorption for one decode token in one kernel, one block
// per head. Apart, the q_b GEMV (38 MB on R1) and mla_absorb_q (W_UK, 17 MB) are two hand-overs on the decode
// step's critical path, and W_UK streams while q_b does (skipping mla_absorb_q's launch took ~9 us off an R1 MoE
// layer: docs/BENCHMARKS.md, session 14). Here the block copies its head's W_UK rows (128 KB) into shared memory
// before the programmatic wait, i.e. while mla_latent_prep runs and HBM is otherwise idle; then
//
//   q[r]    = bf16(qa_n . W_qb[h * 192 + r])            r < 192: 16 warps x 12 rows, 2 rows a round, two
//                                                       rounds in flight, 3 chunks of 16 FP8 weights per lane
//                                                       and row (k = 1536), float32 FMAs as the GEMV's
//   qfull[h, c]       = bf16(sum over d < 128 of q[d] W_UK[h][d][c])     thread c of 512
//   qfull[h, 512 + :] = rope(q[128:192])                                  threads < 32
//
// q is rounded to bf16 as the q_b GEMV's output is, so the result differs from the two kernels' only in the order
// of float32 sums. R1 / V3 shapes only (q_lora 1536, nope 128, rope 64, latent 512, FP8 q_b); one token.
#include "kernels/core/dot.cuh"
#include "kernels/core/launch.hpp"
#include "kernels/core/mma.cuh"
#include "kernels/core/pdl.cuh"
#include "kernels/core/vec.cuh"
#include "kernels/mla/mla_absorb.hpp"

#include <stdexcept>
#include <string>

namespace troupe::kernels {
namespace {

using bf16 = __nv_bfloat16;
constexpr int kThreads = 512, kWarps = kThreads / 32;
constexpr int kK = 1536, kNope = 128, kRope = 64, kRows = kNope + kRope, kLatent = 512;
constexpr int kCpl = kK / 16 / 32;                      // 16-byte chunks per lane and row
constexpr int kRowsPerWarp = kRows / kWarps, kRound = 2;  // rows per warp; rows per round
constexpr int kWukBytes = kNope * kLatent * 2;
static_assert(kRows % kWarps == 0 && kRowsPerWarp % (2 * kRound) == 0, "rows: whole round pairs per warp");
static_assert(kLatent == kThreads, "one latent column per thread");

struct Smem {
  bf16 wuk[kNope * kLatent];  // W_UK[h] as kv_b stores it: row d, latent column c
  float q[kRows];
  bf16 qpe[kRope];
};

__global__ void __launch_bounds__(kThreads, 1) qb_absorb_kernel(const bf16* x, const std::uint8_t* wq,
                                                                const float* wq_scale, const bf16* kv_b,
                                                                int head_rows, const std::int32_t* positions,
                                                                const float* cs, bool interleaved, bf16* qfull) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  Smem& sm = *reinterpret_cast<Smem*>(smem_raw);
  const int h = blockIdx.x, warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  // W_UK[h]: 128 contiguous rows of kv_b, no output of this step (pdl.cuh): copied now.
  const std::uint8_t* wuk = reinterpret_cast<const std::uint8_t*>(kv_b + std::size_t(h) * head_rows * kLatent);
  for (int i = threadIdx.x; i < kWukBytes / 16; i += kThreads)
    detail::cp_async16(reinterpret_cast<std::uint8_t*>(sm.wuk) + i * 16, wuk + std::size_t(i) * 16, true);
  detail::cp_async_commit();
  const std::uint64_t policy = detail::l2_policy(true);
  auto row_ptr = [&](int i) {  // warp's i-th row: head row warp + kWarps i
    return wq + (std::size_t(h) * kRows + warp + kWarps * i) * kK;
  };
  auto load = [&](uint4 (&v)[kRound][kCpl], int i0) {
#pragma unroll
    for (int r = 0; r < kRound; ++r)
#pragma unroll
      for (int u = 0; u < kCpl; ++u) v[r][u] = detail::ld_stream16(row_ptr(i0 + r) + (lane + 32 * u) * 16, policy);
  };
  const float* pos_cs = cs + std::size_t(positions[0]) * kRope;
  detail::pdl_wait();  // x (q_a_layernorm's output) comes from mla_latent_prep
  detail::pdl_trigger();
  // Two rounds in flight, in two register sets that take turns (as gemv_down_flat_kernel's): one block of 16 warps
  // per SM spends ~60 instructions per chunk on the dots, which one set's loads left unhidden. Before the wait as
  // well, these loads slowed mla_latent_prep more than they saved (0.5-1 us). f16x2 dots (dot_fp8x16_f16) measured
  // no faster and missed the kernel test's tolerance.
  uint4 va[kRound][kCpl], vb[kRound][kCpl];
  load(va, 0);
  load(vb, kRound);
  uint4 xv[kCpl][2];
#pragma unroll
  for (int u = 0; u < kCpl; ++u) {
    const uint4* p = reinterpret_cast<const uint4*>(x + (lane + 32 * u) * 16);
    xv[u][0] = __ldg(p), xv[u][1] = __ldg(p + 1);
  }
  auto consume = [&](const uint4 (&v)[kRound][kCpl], int i0) {
#pragma unroll
    for (int r = 0; r < kRound; ++r) {
      const int row = warp + kWarps * (i0 + r);
      const float* sc = wq_scale + std::size_t((h * kRows + row) / 128) * (kK / 128);
      float acc = 0.f;
#pragma unroll
      for (int u = 0; u < kCpl; ++u)
        acc = fmaf(__ldg(sc + (lane + 32 * u) / 8), detail::dot_fp8x16(v[r][u], xv[u][0], xv[u][1]), acc);
      acc = detail::warp_sum(acc);
      if (lane == 0) {
        const bf16 q = __float2bfloat16(acc);
        sm.q[row] = __bfloat162float(q);
        if (row >= kNope) sm.qpe[row - kNope] = q;
      }
    }
  };
  for (int i0 = 0; i0 < kRowsPerWarp; i0 += 2 * kRound) {
    consume(va, i0);
    if (i0 + 2 * kRound < kRowsPerWarp) load(va, i0 + 2 * kRound);
    consume(vb, i0 + kRound);
    if (i0 + 3 * kRound < kRowsPerWarp) load(vb, i0 + 3 * kRound);
  }
  detail::cp_async_wait<0>();
  __syncthreads();
  bf16* out = qfull + std::size_t(h) * (kLatent + kRope);
  const int c = threadIdx.x;
  float acc = 0.f;
#pragma unroll 8
  for (int d = 0; d < kNope; ++d) acc = fmaf(sm.q[d], __bfloat162float(sm.wuk[d * kLatent + c]), acc);
  out[c] = __float2bfloat16(acc);
  if (threadIdx.x < kRope / 2)
    detail::rope_pair(sm.qpe, out + kLatent, nullptr, pos_cs, threadIdx.x, kRope / 2, interleaved);
}

}  // namespace

bool mla_qb_absorb_fits(int num_tokens, int q_lora, int head_q_rows, int nope, int rope_dim, int latent_dim) {
  static const bool on = !env_is("TROUPE_MLA_QB_ABSORB", "0");
  return on && num_tokens == 1 && q_lora == kK && head_q_rows == kRows && nope == kNope && rope_dim == kRope &&
         latent_dim == kLatent;
}

void mla_qb_absorb(const bf16* x, const __nv_fp8_e4m3* wq, const float* wq_scale, int heads, int v_dim,
                   const bf16* kv_b, const std::int32_t* positions, const float* cos_sin, bool interleaved,
                   bf16* qfull, cudaStream_t s) {
  if (!detail::aligned16(x) || !detail::aligned16(wq) || !detail::aligned16(kv_b) || !detail::aligned16(qfull))
    throw std::invalid_argument("mla_qb_absorb: x, q_b, kv_b and qfull must be 16-byte aligned");
  const int smem = int(sizeof(Smem));
  static const bool sized = [&] {
    return cudaFuncSetAttribute(qb_absorb_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem) == cudaSuccess;
  }();
  if (!sized) throw std::runtime_error("mla_qb_absorb: cannot give the kernel " + std::to_string(smem) + " bytes");
  launch_pdl(qb_absorb_kernel, dim3(heads), dim3(kThreads), smem, s, "mla_qb_absorb", x,
             reinterpret_cast<const std::uint8_t*>(wq), wq_scale, kv_b, kNope + v_dim, positions, cos_sin,
             interleaved, qfull);
}

}  // namespace troupe::kernels
