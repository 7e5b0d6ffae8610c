// MLA over the paged latent cache: the cache write, the host-side dispatch and the split combine (alone, or fused
// with W_UV for decode-sized batches: mla_absorb.hpp). The two
// attention kernels live in mla_fast.cuh (512 + 64, tensor cores) and mla_generic.cuh (any dims, scalar).
#include "kernels/core/dot.cuh"
#include "kernels/core/launch.hpp"
#include "kernels/core/pdl.cuh"
#include "kernels/core/vec.cuh"
#include "kernels/mla/mla.hpp"
#include "kernels/mla/mla_fast.cuh"
#include "kernels/mla/mla_generic.cuh"
#include "kernels/mla/mla_plan.hpp"

#include <atomic>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace troupe::kernels {

namespace {

using namespace mla_detail;

// The fast kernel's shared-memory opt-in, once per device.
void allow_smem(int bytes) {
  static std::atomic<std::uint64_t> done{0};
  opt_in_smem(mla_fast_kernel, bytes, done);
}

int sm_count() {
  int dev = 0, n = 0;
  cudaGetDevice(&dev);
  cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev);
  return n > 0 ? n : 1;
}

// One CTA per token; a slot < 0 (padding token) is skipped, as vLLM does.
__global__ void cache_write_kernel(const __nv_bfloat16* rows, int stride, int width, const std::int32_t* slots,
                                   __nv_bfloat16* cache, bool vec) {
  const int t = blockIdx.x;
  const long slot = slots[t];
  if (slot < 0) return;
  const __nv_bfloat16* src = rows + std::size_t(t) * stride;
  __nv_bfloat16* dst = cache + std::size_t(slot) * width;
  if (vec) {
    for (int i = threadIdx.x; i < width / 8; i += blockDim.x)
      reinterpret_cast<uint4*>(dst)[i] = reinterpret_cast<const uint4*>(src)[i];
  } else {
    for (int i = threadIdx.x; i < width; i += blockDim.x) dst[i] = src[i];
  }
}

// Merges the splits of one (token, head): o = sum_j 2^(lse_j - max) o_j / sum_j 2^(lse_j - max). A split that saw
// no position of the row wrote lse = -inf and o = 0, so its weight is 0 and its values are finite. 128 threads x
// 4 columns; the split loop is unrolled so that several partial loads are in flight at once.
// The splits' weights 2^(lse_j - max) of one row into wgt (blockDim.x >= splits; every thread calls it).
__device__ void split_weights(const float* part_lse, int splits, int rows, int row, float* wgt) {
  const int tid = threadIdx.x;
  const float lse = tid < splits ? part_lse[std::size_t(tid) * rows + row] : -INFINITY;
  if (tid < splits) wgt[tid] = lse;
  __syncthreads();
  float mx = -INFINITY;
  for (int j = 0; j < splits; ++j) mx = fmaxf(mx, wgt[j]);
  __syncthreads();
  if (tid < splits) wgt[tid] = lse == -INFINITY ? 0.f : exp2f(lse - mx);
  __syncthreads();
}

__global__ void __launch_bounds__(128) combine_kernel(const float* part_o, const float* part_lse, int splits, int rows,
                                                      __nv_bfloat16* out) {
  __shared__ float wgt[kMaxSplits];
  const int row = blockIdx.x, tid = threadIdx.x;  // row = token * num_heads + head
  split_weights(part_lse, splits, rows, row, wgt);
  float wsum = 0.f;
  float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);
#pragma unroll 8
  for (int j = 0; j < splits; ++j) {
    const float w = wgt[j];
    const float4 v = reinterpret_cast<const float4*>(part_o + (std::size_t(j) * rows + row) * kFastLatent)[tid];
    wsum += w;
    acc.x += w * v.x, acc.y += w * v.y, acc.z += w * v.z, acc.w += w * v.w;
  }
  const float inv = wsum > 0.f ? 1.f / wsum : 0.f;
  __nv_bfloat162* dst = reinterpret_cast<__nv_bfloat162*>(out + std::size_t(row) * kFastLatent + 4 * tid);
  dst[0] = __floats2bfloat162_rn(acc.x * inv, acc.y * inv);
  dst[1] = __floats2bfloat162_rn(acc.z * inv, acc.w * inv);
}

// The split merge (as combine_kernel, or the unsplit bf16 rows) followed by W_UV: kUvParts blocks per (token, head)
// row, part p making output rows p, p + kUvParts, ... (one block per row read 128 KB alone: ~10 us at R1's 128
// heads; the merge is repeated per part). The merged latent row stays in shared memory as float32; warp w of part
// p takes W_UV rows p + kUvParts (w + 8 (r + kUvRows k)), r < kUvRows per round k (a 1 KB row is 64 chunks of 16
// bytes: lane l reads chunks l and l + 32); the first round's loads are issued before the wait.
constexpr int kUvThreads = 256, kUvRows = 8, kUvParts = 2;
__global__ void __launch_bounds__(kUvThreads) combine_uv_kernel(const float* part_o, const float* part_lse,
                                                                int splits, int rows, const __nv_bfloat16* olat,
                                                                int heads, MlaUvOut uv) {
  __shared__ float wgt[kMaxSplits];
  __shared__ __align__(16) float o[kFastLatent];
  const int row = blockIdx.x / kUvParts, part = blockIdx.x % kUvParts, h = row % heads;
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const __nv_bfloat16* w = uv.kv_b + (std::size_t(h) * (uv.nope + uv.v_dim) + uv.nope) * kFastLatent;
  uint4 v[kUvRows][2];
  auto load = [&](int r0) {
#pragma unroll
    for (int r = 0; r < kUvRows; ++r)
#pragma unroll
      for (int u = 0; u < 2; ++u) {
        const int vr = part + kUvParts * (r0 + 8 * r);
        v[r][u] = vr < uv.v_dim ? detail::ld_stream16(w + std::size_t(vr) * kFastLatent + (lane + 32 * u) * 8)
                                : make_uint4(0, 0, 0, 0);
      }
  };
  load(warp);
  detail::pdl_wait();
  detail::pdl_trigger();
  if (splits > 1) {
    split_weights(part_lse, splits, rows, row, wgt);
    for (int c = tid; c < kFastLatent; c += kUvThreads) {
      float acc = 0.f, wsum = 0.f;
#pragma unroll 8
      for (int j = 0; j < splits; ++j)
        acc += wgt[j] * part_o[(std::size_t(j) * rows + row) * kFastLatent + c], wsum += wgt[j];
      o[c] = wsum > 0.f ? acc / wsum : 0.f;
    }
  } else {
    for (int c = tid; c < kFastLatent; c += kUvThreads)
      o[c] = __bfloat162float(olat[std::size_t(row) * kFastLatent + c]);
  }
  __syncthreads();
  for (int r0 = warp;; r0 += 8 * kUvRows) {
#pragma unroll
    for (int r = 0; r < kUvRows; ++r) {
      float d = 0.f;
#pragma unroll
      for (int u = 0; u < 2; ++u) {
        const int c = (lane + 32 * u) * 8;
        const __nv_bfloat162* wb = reinterpret_cast<const __nv_bfloat162*>(&v[r][u]);
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          const float2 f = __bfloat1622float2(wb[j]);
          d = fmaf(f.x, o[c + 2 * j], fmaf(f.y, o[c + 2 * j + 1], d));
        }
      }
      d = detail::warp_sum(d);
      const int vr = part + kUvParts * (r0 + 8 * r);
      if (lane == 0 && vr < uv.v_dim) uv.out[std::size_t(row) * uv.v_dim + vr] = __float2bfloat16(d);
    }
    if (part + kUvParts * (r0 + 8 * kUvRows) >= uv.v_dim) break;  // this warp's next row
    load(r0 + 8 * kUvRows);
  }
}

void validate(const AttnBatch& b, int num_heads, int latent_dim, int rope_dim) {
  auto fail = [](const std::string& m) { throw std::invalid_argument("mla_attention_absorbed: " + m); };
  if (num_heads <= 0) fail("num_heads must be positive");
  if (latent_dim <= 0 || rope_dim < 0) fail("latent_dim must be positive and rope_dim non-negative");
  const bool fast = latent_dim == kFastLatent && rope_dim == kFastRope;
  if (!fast && latent_dim > kMaxLatentGeneric)
    fail("latent_dim " + std::to_string(latent_dim) + " above " + std::to_string(kMaxLatentGeneric));
  if (!fast && rope_dim > kMaxRopeGeneric) fail("rope_dim " + std::to_string(rope_dim) + " above 256");
  if (b.block_size <= 0 || b.max_blocks_per_seq <= 0) fail("block_size and max_blocks_per_seq must be positive");
  if (b.max_seq_len < 0) fail("max_seq_len must not be negative");
  if (b.num_tokens > 65535) fail("more than 65535 query tokens in one call");
}

}  // namespace

void mla_cache_write(const __nv_bfloat16* rows, int stride, int latent_dim, int rope_dim, const AttnBatch& b,
                     __nv_bfloat16* cache, cudaStream_t s) {
  if (b.num_tokens <= 0) return;
  const int width = latent_dim + rope_dim;
  if (width <= 0 || stride < width) throw std::invalid_argument("mla_cache_write: stride below latent + rope");
  const bool vec = width % 8 == 0 && stride % 8 == 0 && reinterpret_cast<std::uintptr_t>(rows) % 16 == 0 &&
                   reinterpret_cast<std::uintptr_t>(cache) % 16 == 0;
  cache_write_kernel<<<b.num_tokens, 128, 0, s>>>(rows, stride, width, b.slot_mapping, cache, vec);
  check_launch("mla_cache_write");
}

std::size_t mla_workspace_bytes(int max_tokens, int num_heads, int latent_dim, int max_seq_len, int block_size) {
  (void)block_size;  // splits are cut in units of kKvTile positions, whatever the block size
  if (latent_dim != kFastLatent) return 0;  // only the fast path splits (rope_dim is checked at launch)
  const int sms = sm_count();
  std::size_t worst = 0;
  // The split count falls as tokens grow (more items fill the GPU) but the partials grow with tokens: take
  // the maximum over every batch size the caller may pass.
  for (int n = 1; n <= max_tokens; ++n)
    worst = std::max(worst, partial_bytes(plan_fast(n, num_heads, max_seq_len, sms), n, num_heads, latent_dim));
  return worst;
}

void mla_attention_absorbed(const __nv_bfloat16* q, int num_heads, int latent_dim, int rope_dim,
                            const __nv_bfloat16* cache, const AttnBatch& b, float scale, void* workspace,
                            __nv_bfloat16* out, cudaStream_t s, const MlaUvOut* uv) {
  validate(b, num_heads, latent_dim, rope_dim);
  if (b.num_tokens <= 0) return;
  if (uv && (latent_dim != kFastLatent || rope_dim != kFastRope || !uv->kv_b || !uv->out || uv->v_dim < 1 ||
             !detail::aligned16(uv->kv_b)))
    throw std::invalid_argument("mla_attention_absorbed: the fused W_UV needs latent 512 + rope 64 and kv_b");
  const float scale_log2 = scale * 1.4426950408889634f;  // softmax in base 2: exp(x) = exp2(x * log2(e))
  if (latent_dim != kFastLatent || rope_dim != kFastRope) {
    mla_generic_kernel<<<dim3(b.num_tokens, num_heads), kGenericThreads, 0, s>>>(q, num_heads, latent_dim,
                                                                                 rope_dim, cache, b, scale_log2,
                                                                                 out);
    check_launch("mla_attention_absorbed (generic)");
    return;
  }
  const MlaPlan p = plan_fast(b.num_tokens, num_heads, b.max_seq_len, sm_count());
  if (p.splits > 1 && workspace == nullptr)
    throw std::invalid_argument("mla_attention_absorbed: split-KV needs the workspace (mla_workspace_bytes)");
  FastArgs a;
  a.q = q;
  a.cache = cache;
  a.b = b;
  a.num_heads = num_heads;
  a.scale_log2 = scale_log2;
  a.out = out;
  a.heads_per_block = p.heads_per_block;
  a.tokens_per_tile = p.tokens_per_tile;
  a.splits = p.splits;
  a.split_len = p.split_len;
  const std::size_t rows = std::size_t(b.num_tokens) * num_heads;
  a.part_o = static_cast<float*>(workspace);
  a.part_lse = a.part_o ? a.part_o + std::size_t(p.splits) * rows * kFastLatent : nullptr;
  const int smem = int(sizeof(FastSmem));
  allow_smem(smem);
  launch_pdl(mla_fast_kernel, dim3(p.head_blocks, p.token_tiles, p.splits), dim3(kFastThreads), smem, s,
             "mla_attention_absorbed (fast)", a);
  if (uv) {
    static_assert(kMaxSplits <= kUvThreads && kFastLatent == 64 * 8, "combine_uv: a split per thread, 64 chunks");
    launch_pdl(combine_uv_kernel, dim3(unsigned(rows) * kUvParts), dim3(kUvThreads), 0, s,
               "mla_attention_absorbed (W_UV)", a.part_o, a.part_lse, p.splits, int(rows), out, num_heads, *uv);
    return;
  }
  if (p.splits > 1) {
    static_assert(kFastLatent == 4 * 128 && kMaxSplits <= 128, "combine: 128 threads x 4 columns, a split per thread");
    combine_kernel<<<int(rows), 128, 0, s>>>(a.part_o, a.part_lse, p.splits, int(rows), out);
    check_launch("mla_attention_absorbed (combine)");
  }
}

}  // namespace troupe::kernels
