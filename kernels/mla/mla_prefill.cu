// Non-absorbed MLA prefill: the latent gather, the row scatter and the attention kernel's dispatch
// (the kernels themselves: mla_prefill_kernel.cuh, mma.sync; mla_prefill_wgmma.cuh, wgmma).
#include "kernels/core/launch.hpp"
#include "kernels/mla/mla_prefill.hpp"
#include "kernels/mla/mla_prefill_kernel.cuh"
#include "kernels/mla/mla_prefill_wgmma.cuh"

#include <atomic>
#include <stdexcept>
#include <string>

namespace troupe::kernels {

namespace {

using namespace mla_prefill_detail;

// One CTA per buffer row: find the row's segment (segments are sorted by buf0), then copy the cached
// [latent | rope] row of that key position into lat and kpe.
__global__ void gather_kernel(const bf16* cache, int latent, int rope, const std::int32_t* tables, int max_blocks,
                              int block_size, const MlaPrefillSeg* segs, int num_segs, bf16* lat, bf16* kpe) {
  const int row = blockIdx.x;
  int lo = 0, hi = num_segs - 1;
  while (lo < hi) {  // the last segment with buf0 <= row
    const int mid = (lo + hi + 1) / 2;
    if (segs[mid].buf0 <= row) lo = mid;
    else hi = mid - 1;
  }
  const MlaPrefillSeg sg = segs[lo];
  const int pos = sg.k_lo + row - sg.buf0;
  const std::size_t slot =
      std::size_t(tables[std::size_t(sg.seq) * max_blocks + pos / block_size]) * block_size + pos % block_size;
  const uint4* src = reinterpret_cast<const uint4*>(cache + slot * std::size_t(latent + rope));
  uint4* dl = reinterpret_cast<uint4*>(lat + std::size_t(row) * latent);
  uint4* dr = reinterpret_cast<uint4*>(kpe + std::size_t(row) * rope);
  const int nl = latent / 8, n = (latent + rope) / 8;
  for (int i = threadIdx.x; i < n; i += blockDim.x) {
    const uint4 v = src[i];
    if (i < nl) dl[i] = v;
    else dr[i - nl] = v;
  }
}

__global__ void scatter_kernel(const bf16* src, const std::int32_t* idx, int cols, bf16* dst, bool vec) {
  const int i = blockIdx.x;
  const std::size_t from = std::size_t(i) * cols, to = std::size_t(idx[i]) * cols;
  if (vec) {
    for (int j = threadIdx.x; j < cols / 8; j += blockDim.x)
      reinterpret_cast<uint4*>(dst + to)[j] = reinterpret_cast<const uint4*>(src + from)[j];
  } else {
    for (int j = threadIdx.x; j < cols; j += blockDim.x) dst[to + j] = src[from + j];
  }
}

template <int NOPE, int ROPE, int DV, int WARPS>
void launch(const Args& a, int num_tiles, cudaStream_t s) {
  using S = Shape<NOPE, ROPE, DV>;
  static std::atomic<std::uint64_t> done{0};
  opt_in_smem(mla_prefill_kernel<NOPE, ROPE, DV, WARPS>, S::kSmemBytes, done);
  mla_prefill_kernel<NOPE, ROPE, DV, WARPS><<<dim3(num_tiles, a.heads), WARPS * 32, S::kSmemBytes, s>>>(a);
}

void launch_wgmma(const Args& a, int num_tiles, cudaStream_t s) {
  static std::atomic<std::uint64_t> done{0};
  opt_in_smem(mla_prefill_wgmma_kernel, WgLayout::kSmemBytes, done);
  mla_prefill_wgmma_kernel<<<dim3(num_tiles, a.heads), WgLayout::kThreads, WgLayout::kSmemBytes, s>>>(a);
}

// DeepSeek's dims in 128-row tiles on the wgmma kernel unless TROUPE_MLA_PREFILL_WGMMA=0 (or mla_prefill_use_wgmma).
std::atomic<bool>& wgmma_on() {
  static std::atomic<bool> on{!env_is("TROUPE_MLA_PREFILL_WGMMA", "0")};
  return on;
}

}  // namespace

bool mla_prefill_use_wgmma(bool on) { return wgmma_on().exchange(on); }

bool mla_prefill_supported(int nope, int rope, int v) {
  return (nope == 128 && rope == 64 && v == 128) || (nope == 64 && rope == 32 && v == 64) ||
         (nope == 32 && rope == 16 && v == 32);
}

void mla_prefill_gather(const bf16* cache, int latent, int rope, const AttnBatch& b, const MlaPrefillSeg* segs,
                        int num_segs, int rows, bf16* lat, bf16* kpe, cudaStream_t s) {
  if (rows <= 0) return;
  if (latent % 8 || rope % 8 || num_segs <= 0)
    throw std::invalid_argument("mla_prefill_gather: latent and rope must be multiples of 8, segments non-empty");
  gather_kernel<<<rows, 64, 0, s>>>(cache, latent, rope, b.block_tables, b.max_blocks_per_seq, b.block_size, segs,
                                    num_segs, lat, kpe);
  check_launch("mla_prefill_gather");
}

void mla_prefill_attention(const bf16* q, const MlaPrefillDims& d, const bf16* kv, const bf16* kpe,
                           const MlaPrefillSeg* segs, const std::int32_t* tiles, int num_tiles, int tile_q,
                           float scale, float* lse, bf16* out, cudaStream_t s) {
  if (!mla_prefill_supported(d.nope, d.rope, d.v))
    throw std::invalid_argument("mla_prefill_attention: no kernel for nope " + std::to_string(d.nope) + ", rope " +
                                std::to_string(d.rope) + ", v " + std::to_string(d.v));
  if (d.heads <= 0 || d.heads > 65535) throw std::invalid_argument("mla_prefill_attention: bad head count");
  if (!mla_prefill_tile_ok(tile_q)) throw std::invalid_argument("mla_prefill_attention: tile_q must be 64 or 128");
  if (num_tiles <= 0) return;
  Args a;
  a.q = q;
  a.q_stride = d.heads * (d.nope + d.rope);
  a.kv = kv;
  a.kv_stride = d.heads * (d.nope + d.v);
  a.kpe = kpe;
  a.segs = segs;
  a.tiles = tiles;
  a.scale_log2 = scale * 1.4426950408889634f;  // exp(x) = exp2(x * log2(e))
  a.lse = lse;
  a.out = out;
  a.heads = d.heads;
  const bool wide = tile_q == 128;
  if (wide && d.nope == 128 && d.rope == 64 && d.v == 128 && wgmma_on().load()) launch_wgmma(a, num_tiles, s);
  else if (d.nope == 128) wide ? launch<128, 64, 128, 8>(a, num_tiles, s) : launch<128, 64, 128, 4>(a, num_tiles, s);
  else if (d.nope == 64) wide ? launch<64, 32, 64, 8>(a, num_tiles, s) : launch<64, 32, 64, 4>(a, num_tiles, s);
  else wide ? launch<32, 16, 32, 8>(a, num_tiles, s) : launch<32, 16, 32, 4>(a, num_tiles, s);
  check_launch("mla_prefill_attention");
}

void scatter_rows_bf16(const bf16* src, const std::int32_t* idx, int n, int cols, bf16* dst, cudaStream_t s) {
  if (n <= 0 || cols <= 0) return;
  const bool vec = cols % 8 == 0 && reinterpret_cast<std::uintptr_t>(src) % 16 == 0 &&
                   reinterpret_cast<std::uintptr_t>(dst) % 16 == 0;
  scatter_kernel<<<n, 128, 0, s>>>(src, idx, cols, dst, vec);
  check_launch("scatter_rows_bf16");
}

}  // namespace troupe::kernels
