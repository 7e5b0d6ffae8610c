// Fused MLA glue (mla_prep.hpp): one block per token for the latent rows, one thread per (head, pair) for q_pe;
// and mla_absorb.hpp's W_UK GEMV with q's rope.
// The arithmetic is that of ops.hpp's rmsnorm and rope (float32, then bf16), so results match them up to the
// order of the RMS sum.
#include "kernels/core/dot.cuh"
#include "kernels/core/launch.hpp"
#include "kernels/core/pdl.cuh"
#include "kernels/core/vec.cuh"
#include "kernels/mla/mla_absorb.hpp"
#include "kernels/mla/mla_prep.hpp"

#include <algorithm>
#include <stdexcept>

namespace troupe::kernels {
namespace {

using bf16 = __nv_bfloat16;
// 192 threads: one 8-vector each for R1's 1536-wide q_a row (and V3's, V2-Lite's 512-wide latent row), so that the
// row stays in registers and the norm weights are loaded before the programmatic wait (rmsnorm_vec_finish): at one
// token this kernel is a chain of dependent loads on the decode step's critical path.
constexpr int kThreads = 192;

// grid (n, q_a ? 2 : 1): y = 0 the latent row, y = 1 the q_a row. The weights, the slot and the position are no
// output of this step's kernels (pdl.cuh): read before the wait.
__global__ void __launch_bounds__(kThreads) latent_prep_kernel(MlaLatentPrep p, const std::int32_t* positions,
                                                               const std::int32_t* slots, bf16* cache, bool vec) {
  __shared__ float red[32];
  const int t = blockIdx.x;
  const bool q_row = blockIdx.y == 1;
  const int dim = q_row ? p.q_dim : p.latent_dim;
  const bool one = vec && dim / 8 <= int(blockDim.x), mine = one && int(threadIdx.x) < dim / 8;
  float w[8];
  if (mine) detail::load_bf16x8((q_row ? p.q_norm : p.kv_norm) + threadIdx.x * 8, w);
  const long slot = q_row ? -1 : slots[t];
  const float* cs = q_row ? nullptr : p.cos_sin + std::size_t(positions[t]) * p.rope_dim;
  detail::pdl_wait();     // q_a and kv_a come from the GEMV before (pdl.cuh)
  detail::pdl_trigger();  // the q_b GEMV may load its weights meanwhile
  const bf16* src = q_row ? p.q_a + std::size_t(t) * p.q_stride : p.kv + std::size_t(t) * p.kv_stride;
  bf16* out = q_row ? p.q_out + std::size_t(t) * p.q_dim : p.rows + std::size_t(t) * p.row_stride;
  bf16* dst = slot >= 0 ? cache + std::size_t(slot) * (p.latent_dim + p.rope_dim) : nullptr;
  float a[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  if (mine) detail::load_bf16x8(src + threadIdx.x * 8, a);
  if (!q_row) {  // the rope part's loads go out with the norm's
    const int half = p.rope_dim / 2;
    for (int i = threadIdx.x; i < half; i += blockDim.x)
      detail::rope_pair(src + p.latent_dim, out + p.latent_dim, dst ? dst + p.latent_dim : nullptr, cs, i, half,
                        p.interleaved);
  }
  if (one)
    detail::rmsnorm_vec_finish(a, w, mine, p.eps, dim, out, dst, red);
  else
    detail::rmsnorm_row(src, q_row ? p.q_norm : p.kv_norm, p.eps, dim, out, dst, vec, red);
}

// blockIdx.x: the token; y * blockDim + x: one (head, pair).
__global__ void q_pe_kernel(const bf16* q, int heads, int nope, int rope_dim, const std::int32_t* positions,
                            const float* cos_sin, bool interleaved, bf16* qfull, int latent_dim) {
  const int t = blockIdx.x, half = rope_dim / 2, k = blockIdx.y * blockDim.x + threadIdx.x;
  if (k >= heads * half) return;
  const int h = k / half, i = k % half;
  const std::size_t head = std::size_t(t) * heads + h;
  detail::rope_pair(q + head * (nope + rope_dim) + nope, qfull + head * (latent_dim + rope_dim) + latent_dim, nullptr,
                    cos_sin + std::size_t(positions[t]) * rope_dim, i, half, interleaved);
}

// mla_absorb_q (mla_absorb.hpp), grid (heads * 4, n), 256 threads: block (h, cb) makes latent columns
// [128 cb, 128 cb + 128) of head h (one block per head read 128 KB alone: 8 us at R1's 128 heads). Thread
// (g = tid / 16, cg = tid % 16) sums rows d = g, g + 16, ... (all loads issued before the wait) over its 8 columns;
// the 16 row groups meet in shared memory and are added in group order:
//
//   W_UK[h] (nope x 512 bf16)   row d: | cb 0: cg 0 .. 15 | cb 1 | cb 2 | cb 3 |   (cg: 16 bytes each)
//   acc[g][8 cg + j] = sum over d = g (mod 16) of q[d] * W_UK[h][d][128 cb + 8 cg + j]
using mla_detail::kFastLatent;  // W_UK rows are latent-wide: the fast path's 512 only
constexpr int kAbsorbThreads = 256, kAbsorbColBlocks = 4, kAbsorbCols = kFastLatent / kAbsorbColBlocks;
using mla_detail::kAbsorbMaxNope;
constexpr int kAbsorbGroups = kAbsorbThreads / (kAbsorbCols / 8);
constexpr int kAbsorbRows = kAbsorbMaxNope / kAbsorbGroups;  // rows per thread, all in flight at once
__global__ void __launch_bounds__(kAbsorbThreads) absorb_q_kernel(const bf16* q, int heads, int nope, int rope_dim,
                                                                  const bf16* kv_b, int head_rows,
                                                                  const std::int32_t* positions, const float* cs,
                                                                  bool interleaved, bf16* qfull) {
  constexpr int kLatent = kFastLatent;
  __shared__ float qs[kAbsorbMaxNope];
  __shared__ __align__(16) float red[kAbsorbGroups][kAbsorbCols];
  const int h = blockIdx.x / kAbsorbColBlocks, cb = blockIdx.x % kAbsorbColBlocks, t = blockIdx.y;
  const int g = threadIdx.x / (kAbsorbCols / 8), cg = threadIdx.x % (kAbsorbCols / 8);
  const bf16* w = kv_b + std::size_t(h) * head_rows * kLatent + cb * kAbsorbCols + cg * 8;
  uint4 v[kAbsorbRows];
#pragma unroll
  for (int i = 0; i < kAbsorbRows; ++i) {  // the weights are no earlier kernel's output: loaded before the wait
    const int d = g + kAbsorbGroups * i;
    v[i] = d < nope ? detail::ld_stream16(w + std::size_t(d) * kLatent) : make_uint4(0, 0, 0, 0);
  }
  detail::pdl_wait();
  detail::pdl_trigger();
  const bf16* qh = q + (std::size_t(t) * heads + h) * (nope + rope_dim);
  for (int d = threadIdx.x; d < nope; d += blockDim.x) qs[d] = __bfloat162float(qh[d]);
  __syncthreads();
  float acc[8] = {};
#pragma unroll
  for (int i = 0; i < kAbsorbRows; ++i) {
    const int d = g + kAbsorbGroups * i;
    if (d >= nope) break;
    const __nv_bfloat162* wb = reinterpret_cast<const __nv_bfloat162*>(&v[i]);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const float2 f = __bfloat1622float2(wb[j]);
      acc[2 * j] = fmaf(qs[d], f.x, acc[2 * j]), acc[2 * j + 1] = fmaf(qs[d], f.y, acc[2 * j + 1]);
    }
  }
#pragma unroll
  for (int j = 0; j < 8; ++j) red[g][cg * 8 + j] = acc[j];
  __syncthreads();
  bf16* out = qfull + (std::size_t(t) * heads + h) * (kLatent + rope_dim);
  if (threadIdx.x < kAbsorbCols / 8) {
    float o[8];
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      o[j] = red[0][cg * 8 + j];
#pragma unroll
      for (int k = 1; k < kAbsorbGroups; ++k) o[j] += red[k][cg * 8 + j];
    }
    uint4 packed;
    __nv_bfloat162* pb = reinterpret_cast<__nv_bfloat162*>(&packed);
#pragma unroll
    for (int j = 0; j < 4; ++j) pb[j] = __floats2bfloat162_rn(o[2 * j], o[2 * j + 1]);
    *reinterpret_cast<uint4*>(out + cb * kAbsorbCols + cg * 8) = packed;
  } else if (cb == 0 && threadIdx.x - kAbsorbCols / 8 < rope_dim / 2) {
    const int i = threadIdx.x - kAbsorbCols / 8, half = rope_dim / 2;
    detail::rope_pair(qh + nope, out + kLatent, nullptr, cs + std::size_t(positions[t]) * rope_dim, i, half,
                      interleaved);
  }
}

}  // namespace

void mla_latent_prep(const MlaLatentPrep& p, const AttnBatch& b, bf16* cache, cudaStream_t s) {
  if (b.num_tokens <= 0) return;
  if (p.rope_dim % 2 != 0 || p.latent_dim <= 0) throw std::invalid_argument("mla_latent_prep: bad latent / rope dims");
  if (p.row_stride < p.latent_dim + p.rope_dim)
    throw std::invalid_argument("mla_latent_prep: row stride below latent + rope");
  const bool vec = p.latent_dim % 8 == 0 && p.kv_stride % 8 == 0 && p.row_stride % 8 == 0 &&
                   (p.latent_dim + p.rope_dim) % 8 == 0 && detail::aligned16(p.kv) && detail::aligned16(p.rows) &&
                   detail::aligned16(cache) && detail::aligned16(p.kv_norm) &&
                   (!p.q_a || (p.q_dim % 8 == 0 && p.q_stride % 8 == 0 && detail::aligned16(p.q_a) &&
                               detail::aligned16(p.q_out) && detail::aligned16(p.q_norm)));
  const dim3 grid(b.num_tokens, p.q_a ? 2 : 1);
  launch_pdl(latent_prep_kernel, grid, dim3(kThreads), 0, s, "mla_latent_prep", p, b.positions, b.slot_mapping, cache,
             vec);
}

void mla_q_pe(const bf16* q, int n, int heads, int nope, int rope_dim, const std::int32_t* positions,
              const float* cos_sin, bool interleaved, bf16* qfull, int latent_dim, cudaStream_t s) {
  if (n <= 0) return;
  if (rope_dim % 2 != 0) throw std::invalid_argument("mla_q_pe: rope_dim must be even");
  const int work = heads * rope_dim / 2, threads = std::min(256, (work + 31) / 32 * 32);
  q_pe_kernel<<<dim3(n, (work + threads - 1) / threads), threads, 0, s>>>(q, heads, nope, rope_dim, positions, cos_sin,
                                                                        interleaved, qfull, latent_dim);
  check_launch("mla_q_pe");
}

bool mla_absorb_fits(int num_tokens, int latent_dim, int rope_dim, int nope, int v_dim) {
  static const bool on = !env_is("TROUPE_MLA_ABSORB", "0");
  return on && mla_detail::absorb_shape_ok(num_tokens, latent_dim, rope_dim, nope, v_dim);
}

void mla_absorb_q(const bf16* q, int n, int heads, int nope, int rope_dim, int v_dim, const bf16* kv_b,
                  int latent_dim, const std::int32_t* positions, const float* cos_sin, bool interleaved, bf16* qfull,
                  cudaStream_t s) {
  if (n <= 0) return;
  if (latent_dim != kFastLatent || nope < 1 || nope > kAbsorbMaxNope || rope_dim % 2 ||
      rope_dim / 2 > kAbsorbThreads - kAbsorbCols / 8)
    throw std::invalid_argument("mla_absorb_q: latent 512, nope 1..256 and an even rope of at most 480 only");
  if (!detail::aligned16(kv_b) || !detail::aligned16(qfull))
    throw std::invalid_argument("mla_absorb_q: kv_b and qfull must be 16-byte aligned");
  launch_pdl(absorb_q_kernel, dim3(heads * kAbsorbColBlocks, n), dim3(kAbsorbThreads), 0, s, "mla_absorb_q", q,
             heads, nope, rope_dim, kv_b, nope + v_dim, positions, cos_sin, interleaved, qfull);
}

}  // namespace troupe::kernels
