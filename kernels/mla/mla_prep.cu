// Fused MLA glue (mla_prep.hpp): one block per token for the latent rows, one thread per (head, pair) for q_pe.
// The arithmetic is that of ops.hpp's rmsnorm and rope (float32, then bf16), so results match them up to the
// order of the RMS sum.
#include "kernels/core/launch.hpp"
#include "kernels/core/pdl.cuh"
#include "kernels/core/vec.cuh"
#include "kernels/mla/mla_prep.hpp"

#include <algorithm>
#include <stdexcept>

namespace troupe::kernels {
namespace {

using bf16 = __nv_bfloat16;
constexpr int kThreads = 128;

// grid (n, q_a ? 2 : 1): y = 0 the latent row, y = 1 the q_a row.
__global__ void __launch_bounds__(kThreads) latent_prep_kernel(MlaLatentPrep p, const std::int32_t* positions,
                                                               const std::int32_t* slots, bf16* cache, bool vec) {
  __shared__ float red[32];
  detail::pdl_trigger();  // the q_b GEMV may load its weights meanwhile (pdl.cuh)
  const int t = blockIdx.x;
  if (blockIdx.y == 1) {
    detail::rmsnorm_row(p.q_a + std::size_t(t) * p.q_stride, p.q_norm, p.eps, p.q_dim,
                        p.q_out + std::size_t(t) * p.q_dim, nullptr, vec, red);
    return;
  }
  const long slot = slots[t];
  const int width = p.latent_dim + p.rope_dim;
  const bf16* src = p.kv + std::size_t(t) * p.kv_stride;
  bf16* row = p.rows + std::size_t(t) * p.row_stride;
  bf16* dst = slot >= 0 ? cache + std::size_t(slot) * width : nullptr;
  detail::rmsnorm_row(src, p.kv_norm, p.eps, p.latent_dim, row, dst, vec, red);
  const float* cs = p.cos_sin + std::size_t(positions[t]) * p.rope_dim;
  const int half = p.rope_dim / 2;
  for (int i = threadIdx.x; i < half; i += blockDim.x)
    detail::rope_pair(src + p.latent_dim, row + p.latent_dim, dst ? dst + p.latent_dim : nullptr, cs, i, half, p.interleaved);
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
  latent_prep_kernel<<<grid, kThreads, 0, s>>>(p, b.positions, b.slot_mapping, cache, vec);
  check_launch("mla_latent_prep");
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

}  // namespace troupe::kernels
