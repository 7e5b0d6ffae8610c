#pragma once
// Tensor-core attention of one query token over its sequence's paged KV (decode tokens and the edges of
// prefill chunks), for head dims 64 and 128 and GQA groups of up to 16 heads. Included by paged_attention.cu.
//
// One block of 4 warps per (token, kv head, kv split), as the per-lane kernel. The GQA group's query heads
// are the 16 rows of the mma A operand (rows >= group are zero and ignored), so one K/V tile serves every
// head of the group:
//
//   S (16 heads x 16 keys) = Q (16 x D) K^T      O (16 x D) += P (16 x 16 keys) V (16 keys x D)
//
// Warp w takes the 16-key tiles w, w + 4, ... of the block's key range and stages each in its own slice of
// shared memory (K as [key][d], V transposed as [d][key]); online softmax in the exp2 domain per warp, then
// the 4 warps merge through shared memory (reused) into the output or the split partials, exactly as the
// per-lane kernel does. (Fragment layouts: kernels/core/mma.cuh.)
#include "kernels/core/attention_params.cuh"
#include "kernels/core/mma.cuh"
#include "kernels/core/prefill_tile.cuh"

namespace troupe::kernels::detail {

constexpr int kDecodeKeys = 16;  // keys per warp tile

template <int D>
struct DecodeSmem {
  static constexpr int kStage = kDecodeKeys * (D + 8) + D * (kDecodeKeys + 8);  // bf16 per warp
  static constexpr int kBytes = 4 * kStage * 2;
  static_assert(kBytes >= 4 * 16 * (D + 2) * 4, "the merge buffer must fit in the staging space");
};

// Stages keys [k0, k0 + 16) (zeros past end) as K [key][d] and V^T [d][key] in this warp's slice. Lanes
// 0-15 take keys 0-15 of d chunk 2i, lanes 16-31 of chunk 2i + 1 (the transposed stores stay in few banks);
// every load is issued before the first store: 2 * D / 16 16-byte loads in flight per lane.
template <int D>
__device__ void stage_kv_transposed(const Params& p, const std::int32_t* table, int kvh, int k0, int end, bf16* ks,
                                    bf16* vt) {
  const int lane = threadIdx.x % 32, r = lane % 16, key = k0 + r;
  std::size_t at = 0;
  if (key < end)
    at = (std::size_t(table[key / p.block_size]) * p.block_size + key % p.block_size) * p.num_kv_heads * D +
         std::size_t(kvh) * D;
  uint4 kv[D / 16], vv[D / 16];
#pragma unroll
  for (int i = 0; i < D / 16; ++i) {
    const int d0 = (2 * i + lane / 16) * 8;
    kv[i] = key < end ? *reinterpret_cast<const uint4*>(p.k_cache + at + d0) : make_uint4(0, 0, 0, 0);
    vv[i] = key < end ? *reinterpret_cast<const uint4*>(p.v_cache + at + d0) : make_uint4(0, 0, 0, 0);
  }
#pragma unroll
  for (int i = 0; i < D / 16; ++i) {
    const int d0 = (2 * i + lane / 16) * 8;
    *reinterpret_cast<uint4*>(ks + r * (D + 8) + d0) = kv[i];
    const bf16* ve = reinterpret_cast<const bf16*>(&vv[i]);
#pragma unroll
    for (int j = 0; j < 8; ++j) vt[(d0 + j) * (kDecodeKeys + 8) + r] = ve[j];
  }
}

// Merges the 4 warps' states of rows [0, G) through shared memory (the reused staging space: [warp][row][D]
// unnormalised O, then [warp][row] (m, l)) into the output, or this split's partials.
template <int D>
__device__ void merge_warps(const Params& p, const SoftmaxRows<D>& st, unsigned char* smem, int t, int head0, int G,
                            int split) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, g = lane / 4, c = lane % 4;
  __syncthreads();
  float* mo = reinterpret_cast<float*>(smem);
  float* ml = mo + 4 * 16 * D;
#pragma unroll
  for (int j = 0; j < D / 8; ++j) {
    float* ra = mo + (warp * 16 + g) * D + j * 8 + 2 * c;
    float* rb = ra + 8 * D;
    ra[0] = st.o[j][0], ra[1] = st.o[j][1], rb[0] = st.o[j][2], rb[1] = st.o[j][3];
  }
  if (c == 0) {
    ml[(warp * 16 + g) * 2] = st.m_a, ml[(warp * 16 + g) * 2 + 1] = st.l_a;
    ml[(warp * 16 + g + 8) * 2] = st.m_b, ml[(warp * 16 + g + 8) * 2 + 1] = st.l_b;
  }
  __syncthreads();
  for (int k = threadIdx.x; k < G * D; k += blockDim.x) {
    const int r = k / D, d = k % D;
    float mx = -INFINITY;
#pragma unroll
    for (int w = 0; w < 4; ++w) mx = fmaxf(mx, ml[(w * 16 + r) * 2]);
    float sum = 0, val = 0;
    if (mx != -INFINITY) {
#pragma unroll
      for (int w = 0; w < 4; ++w) {
        const float mw = ml[(w * 16 + r) * 2];
        if (mw == -INFINITY) continue;  // this warp saw no keys
        const float f = exp2f(mw - mx);
        sum += ml[(w * 16 + r) * 2 + 1] * f;
        val += mo[(w * 16 + r) * D + d] * f;
      }
    }
    const std::size_t th = std::size_t(t) * p.num_heads + head0 + r;
    if (p.splits == 1) {
      p.out[th * D + d] = __float2bfloat16(sum > 0 ? val / sum : 0.0f);
    } else {
      p.part_acc[(th * p.splits + split) * D + d] = val;
      if (d == 0) p.part_ml[(th * p.splits + split) * 2] = mx, p.part_ml[(th * p.splits + split) * 2 + 1] = sum;
    }
  }
}

template <int D>
__global__ void __launch_bounds__(128) decode_mma_kernel(Params p) {
  __shared__ __align__(16) unsigned char smem[DecodeSmem<D>::kBytes];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, g = lane / 4, c = lane % 4;
  const int kvh = blockIdx.x % p.num_kv_heads, t = blockIdx.x / p.num_kv_heads, split = blockIdx.y;
  if (p.mma_tiles && prefill_tile_uniform(p.token_seq, p.positions, p.num_tokens, t / kPrefillTile)) return;
  const int head0 = kvh * p.group, G = p.group;
  const int n = p.positions[t] + 1, seq = p.token_seq[t];
  const int begin = split * p.split_len, end = min(n, begin + p.split_len);
  const std::int32_t* table = p.block_tables + std::size_t(seq) * p.max_blocks;
  bf16* ks = reinterpret_cast<bf16*>(smem) + warp * DecodeSmem<D>::kStage;  // [16][D + 8]
  bf16* vt = ks + kDecodeKeys * (D + 8);                                    // [D][16 + 8]
  const bf16* qa = p.q + std::size_t(t) * p.q_stride + std::size_t(head0 + g) * D;
  const bf16* qb = qa + 8 * D;
  std::uint32_t qf[D / 16][4];  // rows = the group's heads; rows >= G are zero
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) {
    qf[kk][0] = g < G ? ld32(qa + kk * 16 + 2 * c) : 0u;
    qf[kk][1] = g + 8 < G ? ld32(qb + kk * 16 + 2 * c) : 0u;
    qf[kk][2] = g < G ? ld32(qa + kk * 16 + 8 + 2 * c) : 0u;
    qf[kk][3] = g + 8 < G ? ld32(qb + kk * 16 + 8 + 2 * c) : 0u;
  }
  SoftmaxRows<D> st;
  st.clear();
  for (int k0 = begin + warp * kDecodeKeys; k0 < end; k0 += 4 * kDecodeKeys) {
    __syncwarp();  // the previous tile's fragments are consumed
    stage_kv_transposed<D>(p, table, kvh, k0, end, ks, vt);
    __syncwarp();
    float s[2][4] = {{0, 0, 0, 0}, {0, 0, 0, 0}};
#pragma unroll
    for (int nt = 0; nt < 2; ++nt) {
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk)
        mma16816(s[nt], qf[kk], ld32(ks + (nt * 8 + g) * (D + 8) + kk * 16 + 2 * c),
                 ld32(ks + (nt * 8 + g) * (D + 8) + kk * 16 + 8 + 2 * c));
#pragma unroll
      for (int j = 0; j < 2; ++j) {  // key k0 is live: the maxima are finite from the first tile on
        const bool live = k0 + nt * 8 + 2 * c + j < end;
        s[nt][j] = live ? s[nt][j] * p.scale_log2 : -INFINITY;
        s[nt][2 + j] = live ? s[nt][2 + j] * p.scale_log2 : -INFINITY;
      }
    }
    std::uint32_t pf[1][4];
    st.update(s, pf);
#pragma unroll
    for (int j = 0; j < D / 8; ++j)
      mma16816(st.o[j], pf[0], ld32(vt + (j * 8 + g) * (kDecodeKeys + 8) + 2 * c),
               ld32(vt + (j * 8 + g) * (kDecodeKeys + 8) + 8 + 2 * c));
  }
  st.reduce_sums();
  merge_warps<D>(p, st, smem, t, head0, G, split);
}

}  // namespace troupe::kernels::detail
