#pragma once
// One FP8 token's expert gate/up GEMV and SiLU over one block per SM (the gate/up counterpart of moe_gemv.cuh's
// gemv_down_flat_kernel). gemv_gate_up_kernel's 2304 blocks of 8 warps (R1: 9 experts x 2048 rows) each start
// cold: a block's two rows per warp are two dependent rounds of loads, and its x comes through L1 per chunk. Here
// each block stays for the whole kernel with two rounds of weights in flight per warp, x staged once in shared
// memory, and the always-on (shared-expert) slots computed before the programmatic wait, while moe_route runs.
//
// Block b owns rows [i0, i1) = [b I / B, (b + 1) I / B) of every slot; an item is one half (in k) of one gate or up
// row, 7 chunks of 16 bytes per lane on R1 (hidden 7168 = 2 pieces of 224 chunks):
//
//   item j = ((q * rows + r) * 2 + m) * P + s     q: slot in run order (always-on slots first), r: row - i0,
//                                                 m: 0 gate / 1 up, s: the k piece of P (2 on R1)
//   part[j] = x[piece s] . W13[e(q)][m I + i0 + r][piece s]   (whole warp; scaled per 128-wide k block)
//   h[p(q), i0 + r] = bf16(silu(g) u),  g = sum over s of part[.., 0, s],  u = sum over s of part[.., 1, s]
//
// Warp w takes items w, w + W, ... in two register sets that take turns (as the flat down GEMV). x lies in two
// planes (the first and the second 8 values of every 16-value chunk) so that a warp's 16-byte reads of one plane hit
// distinct banks. The dots run in f16x2 against x staged as f16 x 2^-8 (dot_fp8x16_f16, as the flat down GEMV: x
// up to ~4600 in magnitude); float32 dots (dot_fp8x16) took ~88 us on R1 with moe_route's window, against ~76
// (they used up its issue slots).
#include "kernels/core/dot.cuh"
#include "kernels/core/pdl.cuh"
#include "kernels/core/vec.cuh"
#include "kernels/moe/moe_gemv.cuh"

#include <cstdint>

namespace troupe::kernels::moe_detail {

// R1: 224-chunk pieces = 7 per lane. 24 warps, two rounds in flight: 172 KB of loads per SM at 80 registers a thread
// (R1 8-layer step, graphs: 16 warps at 114 registers, or 32 with 4 chunks per lane, ~20 us slower: BENCHMARKS.md).
constexpr int kGateUpFlatThreads = 768, kGateUpFlatCpl = 7;

// Pieces per row: rows of up to 32 CPL chunks are one piece, longer ones are cut evenly.
__host__ __device__ constexpr int gate_up_flat_pieces(int hidden, int cpl) {
  return (hidden / 16 + 32 * cpl - 1) / (32 * cpl);
}

// Dynamic shared memory: x's two planes, then the block's partials.
__host__ __device__ constexpr std::size_t gate_up_flat_smem(int hidden, int rows_per_block, int top_k, int pieces) {
  return std::size_t(hidden) * 2 + std::size_t(rows_per_block) * top_k * 2 * pieces * 4;
}

// grid: B blocks (one per SM, one SM left for moe_route when slots are always-on); FP8 weights, one token.
template <int CPL>
__global__ void __launch_bounds__(kGateUpFlatThreads, 1) gemv_gate_up_flat_kernel(GemvArgs a, int pieces) {
  extern __shared__ __align__(16) unsigned char gemv_smem[];
  const int chunks = a.hidden / 16, pc = (chunks + pieces - 1) / pieces;
  uint4* x0 = reinterpret_cast<uint4*>(gemv_smem);  // plane 0: values 16 c .. 16 c + 7 of chunk c
  uint4* x1 = x0 + chunks;                           // plane 1: values 16 c + 8 .. 16 c + 15
  float* part = reinterpret_cast<float*>(x1 + chunks);
  const int B = gridDim.x, i0 = int(std::int64_t(blockIdx.x) * a.inter / B);
  const int rows = int(std::int64_t(blockIdx.x + 1) * a.inter / B) - i0;
  const int S = a.always_on, items = rows * a.top_k * 2 * pieces, W = blockDim.x / 32;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int kb = (a.hidden + 127) / 128, ib = (a.inter + 127) / 128;
  const auto* w13 = static_cast<const unsigned char*>(a.w13);
  bool waited = false;
  auto wait = [&] {
    if (waited) return;
    detail::pdl_wait();  // the ids (and, without always-on slots, x) come from the kernel before (pdl.cuh)
    detail::pdl_trigger();
    waited = true;
  };
  // x is complete at launch when slots are always-on (moe_route passed its own wait on the router GEMV, which
  // waited for the norm that wrote x); otherwise the kernel before wrote it.
  if (!S) wait();
  for (int c = threadIdx.x; c < chunks; c += blockDim.x) {
    const uint4* src = reinterpret_cast<const uint4*>(a.x) + 2 * c;
    x0[c] = detail::f16_scaled8(src[0]), x1[c] = detail::f16_scaled8(src[1]);
  }
  __syncthreads();
  auto slot = [&](int q) { return S ? (q + a.top_k - S) % a.top_k : q; };
  auto expert = [&](int q) {
    const int p = slot(q);
    if (p >= a.top_k - S) return a.num_experts - S + (p - (a.top_k - S));
    wait();
    return int(a.topk_ids[p]);
  };
  struct Item {
    const unsigned char* row;  // the piece's first chunk; null: past the end, or a skipped expert id
    const float* scale;        // the piece's row of k-block scales
    int c0, n;                 // the piece's first chunk and chunk count
  };
  auto item = [&](int j) {
    Item it{nullptr, nullptr, 0, 0};
    if (j >= items) return it;
    const int s = j % pieces, m = (j / pieces) % 2, r = (j / pieces / 2) % rows, q = j / pieces / 2 / rows;
    const int e = expert(q);
    if (e < 0 || e >= a.num_experts) return it;
    const int row = m * a.inter + i0 + r;
    it.c0 = s * pc, it.n = min(pc, chunks - s * pc);
    it.row = w13 + (std::size_t(e) * 2 * a.inter + row) * a.hidden + std::size_t(it.c0) * 16;
    it.scale = a.w13_scale + (std::size_t(e) * 2 * ib + m * ib + (i0 + r) / 128) * kb;
    return it;
  };
  auto load = [&](const Item& it, uint4 (&v)[CPL]) {
#pragma unroll
    for (int u = 0; u < CPL; ++u) {
      const int c = lane + 32 * u;
      v[u] = it.row && c < it.n ? detail::ld_nc16(it.row + std::size_t(c) * 16) : make_uint4(0, 0, 0, 0);
    }
  };
  auto consume = [&](const Item& it, const uint4 (&v)[CPL], int j) {
    float d = 0.f;
    if (it.row) {
#pragma unroll
      for (int u = 0; u < CPL; ++u) {
        const int c = lane + 32 * u;
        if (c >= it.n) break;
        const int k = it.c0 + c;
        d = fmaf(__ldg(it.scale + k / 8), detail::dot_fp8x16_f16(v[u], x0[k], x1[k]), d);
      }
    }
    d = warp_sum(d);
    if (lane == 0 && j < items) part[j] = d * (1.f / detail::kF16XScale);
  };
  Item ca = item(warp), cb = item(warp + W);
  uint4 va[CPL], vb[CPL];
  load(ca, va);
  load(cb, vb);
  for (int j = warp; j < items; j += 2 * W) {
    consume(ca, va, j);
    ca = item(j + 2 * W);
    load(ca, va);
    if (j + W >= items) break;
    consume(cb, vb, j + W);
    cb = item(j + 3 * W);
    load(cb, vb);
  }
  wait();  // h is written only after it (pdl.cuh)
  __syncthreads();
  for (int t = threadIdx.x; t < rows * a.top_k; t += blockDim.x) {
    const int q = t / rows, r = t % rows, p = slot(q), e = expert(q);
    if (e < 0 || e >= a.num_experts) continue;  // skipped ids leave h unread
    float gu[2] = {0.f, 0.f};
    for (int m = 0; m < 2; ++m)
      for (int s = 0; s < pieces; ++s) gu[m] += part[(t * 2 + m) * pieces + s];
    a.h[std::size_t(p) * a.inter + i0 + r] = __float2bfloat16(gu[0] / (1.f + expf(-gu[0])) * gu[1]);
  }
}

}  // namespace troupe::kernels::moe_detail
