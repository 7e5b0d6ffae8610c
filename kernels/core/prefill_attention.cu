// Tensor-core causal attention for the uniform 64-token tiles of prefill chunks (kernels/core/prefill_tile.cuh
// says which), FlashAttention-2 style with mma.sync m16n8k16 (bf16 in, float32 accumulate).
//
// One block of 4 warps per (query tile, query head); warp w owns query rows [16w, 16w + 16). Per 64-key
// tile of the sequence (read through the block table) the block stages K and V as [key][d] in shared memory
// (rows padded by 8 bf16 so fragment loads hit 32 distinct banks; V's fragments come transposed through
// ldmatrix.trans), then each warp:
//   S = Q K^T (16 x 64, float32)  ->  causal mask, online softmax in the exp2 domain  ->  O += P V
// P never leaves registers: the accumulator layout of S is the A-operand layout of the P V product.
// (Fragment layouts: kernels/core/mma.cuh.)
#include "kernels/core/ops.hpp"
#include "kernels/core/prefill_attention.hpp"
#include "kernels/core/mma.cuh"
#include "kernels/core/prefill_tile.cuh"

#include <cstdint>

namespace troupe::kernels::detail {
namespace {

constexpr int kKeys = 64;  // keys per shared-memory tile
constexpr int kPad = 8;

struct Params {
  const bf16* q;
  int q_stride, num_heads, group, num_tokens;
  const bf16 *k_cache, *v_cache;
  int kv_row;  // num_kv_heads * D
  const std::int32_t *token_seq, *positions, *block_tables;
  int max_blocks, block_size;
  float scale_log2;
  bf16* out;
};

// Stages keys [k0, k0 + 64) of kv head kvh as [key][d] (zeros past n_keys): a row's D / 8 16-byte chunks
// go to consecutive threads (coalesced); the padded rows keep stores and fragment loads conflict-free.
template <int D>
__device__ void stage_kv(const Params& p, const std::int32_t* table, int kvh, int k0, int n_keys,
                         bf16 (&ks)[kKeys][D + kPad], bf16 (&vs)[kKeys][D + kPad]) {
  for (int v = threadIdx.x; v < kKeys * (D / 8); v += blockDim.x) {
    const int r = v / (D / 8), d0 = (v % (D / 8)) * 8, key = k0 + r;
    uint4 kv = make_uint4(0, 0, 0, 0), vv = make_uint4(0, 0, 0, 0);
    if (key < n_keys) {
      const std::size_t slot = std::size_t(table[key / p.block_size]) * p.block_size + key % p.block_size;
      const std::size_t at = slot * p.kv_row + std::size_t(kvh) * D + d0;
      kv = *reinterpret_cast<const uint4*>(p.k_cache + at);
      vv = *reinterpret_cast<const uint4*>(p.v_cache + at);
    }
    *reinterpret_cast<uint4*>(&ks[r][d0]) = kv;
    *reinterpret_cast<uint4*>(&vs[r][d0]) = vv;
  }
}

template <int D>
__global__ void __launch_bounds__(128) prefill_mma_kernel(Params p) {
  __shared__ __align__(16) bf16 ks[kKeys][D + kPad];
  __shared__ __align__(16) bf16 vs[kKeys][D + kPad];
  const int tile = blockIdx.x, h = blockIdx.y, kvh = h / p.group;
  if (!prefill_tile_uniform(p.token_seq, p.positions, p.num_tokens, tile)) return;  // the per-token kernel's
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, g = lane / 4, c = lane % 4;
  const int t0 = tile * kPrefillTile, seq = p.token_seq[t0], pos0 = p.positions[t0];
  const std::int32_t* table = p.block_tables + std::size_t(seq) * p.max_blocks;
  const int row0 = warp * 16 + g;  // this thread's rows: row0 and row0 + 8 of the tile
  const int pos_a = pos0 + row0, pos_b = pos_a + 8;
  const bf16* qa = p.q + std::size_t(t0 + row0) * p.q_stride + std::size_t(h) * D;
  const bf16* qb = qa + std::size_t(8) * p.q_stride;
  std::uint32_t qf[D / 16][4];
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) {
    qf[kk][0] = ld32(qa + kk * 16 + 2 * c), qf[kk][1] = ld32(qb + kk * 16 + 2 * c);
    qf[kk][2] = ld32(qa + kk * 16 + 8 + 2 * c), qf[kk][3] = ld32(qb + kk * 16 + 8 + 2 * c);
  }
  SoftmaxRows<D> st;
  st.clear();
  const int n_keys = pos0 + kPrefillTile;  // the last row sees keys 0..pos0 + 63
  for (int k0 = 0; k0 < n_keys; k0 += kKeys) {
    __syncthreads();  // the previous tile's fragments are consumed
    stage_kv<D>(p, table, kvh, k0, n_keys, ks, vs);
    __syncthreads();
    float s[kKeys / 8][4];
#pragma unroll
    for (int n = 0; n < kKeys / 8; ++n) {
      s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0;
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk)
        mma16816(s[n], qf[kk], ld32(&ks[n * 8 + g][kk * 16 + 2 * c]), ld32(&ks[n * 8 + g][kk * 16 + 8 + 2 * c]));
#pragma unroll
      for (int j = 0; j < 2; ++j) {  // causal mask; key 0 is visible to every row
        const int key = k0 + n * 8 + 2 * c + j;
        s[n][j] = key <= pos_a ? s[n][j] * p.scale_log2 : -INFINITY;
        s[n][2 + j] = key <= pos_b ? s[n][2 + j] * p.scale_log2 : -INFINITY;
      }
    }
    std::uint32_t pf[kKeys / 16][4];
    st.update(s, pf);
    // V's B fragments through ldmatrix.trans: lane l addresses key 16kk + l % 16, d chunk 16jj + 8 (l / 16).
#pragma unroll
    for (int jj = 0; jj < D / 16; ++jj)
#pragma unroll
      for (int kk = 0; kk < kKeys / 16; ++kk) {
        std::uint32_t b[4];
        ldmatrix_x4_trans(b, &vs[kk * 16 + lane % 16][jj * 16 + (lane / 16) * 8]);
        mma16816(st.o[2 * jj], pf[kk], b[0], b[1]);
        mma16816(st.o[2 * jj + 1], pf[kk], b[2], b[3]);
      }
  }
  st.reduce_sums();
  const float inv_a = 1.0f / st.l_a, inv_b = 1.0f / st.l_b;
  bf16* oa = p.out + std::size_t(t0 + row0) * p.num_heads * D + std::size_t(h) * D;
  bf16* ob = oa + std::size_t(8) * p.num_heads * D;
#pragma unroll
  for (int n = 0; n < D / 8; ++n) {
    *reinterpret_cast<std::uint32_t*>(oa + n * 8 + 2 * c) = pack_bf16(st.o[n][0] * inv_a, st.o[n][1] * inv_a);
    *reinterpret_cast<std::uint32_t*>(ob + n * 8 + 2 * c) = pack_bf16(st.o[n][2] * inv_b, st.o[n][3] * inv_b);
  }
}

}  // namespace

bool prefill_mma_supported(int head_dim) { return head_dim == 64 || head_dim == 128; }

void prefill_attention_mma(const bf16* q, int q_stride, int num_heads, int num_kv_heads, int head_dim,
                           const bf16* k_cache, const bf16* v_cache, const AttnBatch& b, float scale_log2,
                           bf16* out, cudaStream_t s) {
  const int tiles = b.num_tokens / kPrefillTile;
  if (tiles == 0) return;
  Params p{q, q_stride, num_heads, num_heads / num_kv_heads, b.num_tokens, k_cache, v_cache,
           num_kv_heads * head_dim, b.token_seq, b.positions, b.block_tables, b.max_blocks_per_seq, b.block_size,
           scale_log2, out};
  const dim3 grid(tiles, num_heads);
  if (head_dim == 64) prefill_mma_kernel<64><<<grid, 128, 0, s>>>(p);
  else prefill_mma_kernel<128><<<grid, 128, 0, s>>>(p);
}

}  // namespace troupe::kernels::detail
