// Causal GQA attention over the paged KV cache (Llama / Qwen2), for every query token of a mixed batch.
//
// One block of 4 warps per (query token, kv head, head chunk, kv split). The block's query heads (up to G
// of the GQA group) share every K/V row it loads. Inside a warp, a key is handled by LPK = D/8 lanes, each
// holding 8 of its D dims (one 16-byte load of K, one of V), so a warp covers KPW = 32/LPK keys at once:
//
//   lane:   0 .. LPK-1 | LPK .. 2LPK-1 | ...        (D = 128: LPK = 16, KPW = 2)
//   key:    base + 0   | base + 1      | ...        dims [8*(lane%LPK), +8) of that key
//
// Each lane group keeps its own online-softmax state (m, l, acc) per head; the groups of a warp merge by
// shuffles, the warps through shared memory. With few blocks (decode), the keys are also split across
// gridDim.y and a second kernel merges the splits' partial states (split-KV, as FlashDecoding).
//
// Head dims 64 and 128 use tensor cores instead: full 64-token tiles of prefill chunks go to
// prefill_attention.cu, the remaining tokens to decode_attention.cuh (same grid, same split partials);
// this per-lane kernel serves the other head dims (8 .. 256) and GQA groups wider than 16.
#include "kernels/core/ops.hpp"
#include "kernels/core/paged_attention.hpp"
#include "kernels/core/attention_params.cuh"
#include "kernels/core/decode_attention.cuh"
#include "kernels/core/launch.hpp"
#include "kernels/core/prefill_attention.hpp"
#include "kernels/core/prefill_tile.cuh"
#include "kernels/core/vec.cuh"

#include <algorithm>
#include <cfloat>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <string>

namespace troupe::kernels {
namespace {

using detail::Params;
constexpr int kWarps = 4;
constexpr float kLog2e = 1.4426950408889634f;


// Merges the KPW lane groups of each warp (shuffles: lanes li, li + LPK, ... hold the same dims), then the
// warps (shared memory), and stores the block's nh heads: the output, or this split's partials.
template <int D, int G>
__device__ void merge_and_store(const Params& p, float (&acc)[G][8], float (&m)[G], float (&l)[G], int t, int head0,
                                int nh, int split) {
  constexpr int LPK = D / 8;
  __shared__ float s_acc[kWarps][G][D];
  __shared__ float s_ml[kWarps][G][2];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, li = lane % LPK, sub = lane / LPK;
#pragma unroll
  for (int o = LPK; o < 32; o <<= 1) {
#pragma unroll
    for (int h = 0; h < G; ++h) {
      const float mo = __shfl_xor_sync(0xffffffffu, m[h], o), lo = __shfl_xor_sync(0xffffffffu, l[h], o);
      const float mx = fmaxf(m[h], mo);
      const float a = mx == -INFINITY ? 0.0f : exp2f(m[h] - mx), c = mx == -INFINITY ? 0.0f : exp2f(mo - mx);
      l[h] = l[h] * a + lo * c;
#pragma unroll
      for (int j = 0; j < 8; ++j) acc[h][j] = acc[h][j] * a + __shfl_xor_sync(0xffffffffu, acc[h][j], o) * c;
      m[h] = mx;
    }
  }
  if (sub == 0) {
#pragma unroll
    for (int h = 0; h < G; ++h) {
#pragma unroll
      for (int j = 0; j < 8; ++j) s_acc[warp][h][li * 8 + j] = acc[h][j];
      if (li == 0) s_ml[warp][h][0] = m[h], s_ml[warp][h][1] = l[h];
    }
  }
  __syncthreads();
  // Merge the warps: one thread per (head, dim).
  for (int k = threadIdx.x; k < nh * D; k += blockDim.x) {
    const int h = k / D, d = k % D;
    float mx = -INFINITY;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) mx = fmaxf(mx, s_ml[w][h][0]);
    float sum = 0, val = 0;
    if (mx != -INFINITY) {
#pragma unroll
      for (int w = 0; w < kWarps; ++w) {
        const float f = exp2f(s_ml[w][h][0] - mx);
        sum += s_ml[w][h][1] * f;
        val += s_acc[w][h][d] * f;
      }
    }
    const std::size_t th = std::size_t(t) * p.num_heads + head0 + h;
    if (p.splits == 1) {
      p.out[th * D + d] = __float2bfloat16(sum > 0 ? val / sum : 0.0f);
    } else {
      p.part_acc[(th * p.splits + split) * D + d] = val;
      if (d == 0) p.part_ml[(th * p.splits + split) * 2] = mx, p.part_ml[(th * p.splits + split) * 2 + 1] = sum;
    }
  }
}

template <int D, int G>
__global__ void __launch_bounds__(kWarps * 32) paged_attention_kernel(Params p) {
  constexpr int LPK = D / 8, KPW = 32 / LPK;
  // Keys per lane group per iteration (2 x kUnroll independent 16-byte loads in flight); fewer for wide
  // groups, whose q and acc registers already take 128 per thread.
  constexpr int kUnroll = G >= 8 ? 2 : 4;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, li = lane % LPK, sub = lane / LPK;
  int b = blockIdx.x;
  const int hc = b % p.head_chunks;
  b /= p.head_chunks;
  const int kvh = b % p.num_kv_heads, t = b / p.num_kv_heads, split = blockIdx.y;
  if (p.mma_tiles && detail::prefill_tile_uniform(p.token_seq, p.positions, p.num_tokens, t / detail::kPrefillTile))
    return;
  const int head0 = kvh * p.group + hc * G;
  const int nh = min(G, p.group - hc * G);
  const int n = p.positions[t] + 1, seq = p.token_seq[t];
  const int begin = split * p.split_len, end = min(n, begin + p.split_len);
  const std::int32_t* table = p.block_tables + std::size_t(seq) * p.max_blocks;

  float q[G][8], acc[G][8], m[G], l[G];
#pragma unroll
  for (int h = 0; h < G; ++h) {
    m[h] = -INFINITY, l[h] = 0;
#pragma unroll
    for (int j = 0; j < 8; ++j) acc[h][j] = 0, q[h][j] = 0;
    if (h < nh) {
      detail::load_bf16x8(p.q + std::size_t(t) * p.q_stride + std::size_t(head0 + h) * D + li * 8, q[h]);
#pragma unroll
      for (int j = 0; j < 8; ++j) q[h][j] *= p.scale_log2;
    }
  }
  const std::size_t row = std::size_t(p.num_kv_heads) * D;
  const bf16* kc = p.k_cache + std::size_t(kvh) * D + li * 8;
  const bf16* vc = p.v_cache + std::size_t(kvh) * D + li * 8;
  for (int base = begin + warp * KPW * kUnroll; base < end; base += kWarps * KPW * kUnroll) {
    float kf[kUnroll][8], vf[kUnroll][8];
    bool ok[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int key = base + u * KPW + sub;
      ok[u] = key < end;
      if (ok[u]) {
        const std::size_t slot = std::size_t(table[key / p.block_size]) * p.block_size + key % p.block_size;
        detail::load_bf16x8(kc + slot * row, kf[u]);
        detail::load_bf16x8(vc + slot * row, vf[u]);
      }
    }
#pragma unroll
    for (int h = 0; h < G; ++h) {
      float s[kUnroll];
      float mx = m[h];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        float d = 0;
#pragma unroll
        for (int j = 0; j < 8; ++j) d += q[h][j] * kf[u][j];
#pragma unroll
        for (int o = LPK / 2; o > 0; o >>= 1) d += __shfl_xor_sync(0xffffffffu, d, o);
        s[u] = ok[u] ? d : -INFINITY;
        mx = fmaxf(mx, s[u]);
      }
      if (mx == -INFINITY) continue;  // nothing seen yet by this lane group
      const float corr = exp2f(m[h] - mx);
      l[h] *= corr;
#pragma unroll
      for (int j = 0; j < 8; ++j) acc[h][j] *= corr;
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const float e = exp2f(s[u] - mx);
        l[h] += e;
#pragma unroll
        for (int j = 0; j < 8; ++j) acc[h][j] += e * (ok[u] ? vf[u][j] : 0.0f);
      }
      m[h] = mx;
    }
  }
  merge_and_store<D, G>(p, acc, m, l, t, head0, nh, split);
}

// One block per (token, head): out = sum_s 2^(m_s - M) acc_s / sum_s 2^(m_s - M) l_s.
__global__ void combine_splits_kernel(const float* part_acc, const float* part_ml, int splits, int D, bf16* out,
                                      Params p) {
  const std::size_t th = blockIdx.x;
  const int t = int(th / p.num_heads);
  if (p.mma_tiles && detail::prefill_tile_uniform(p.token_seq, p.positions, p.num_tokens, t / detail::kPrefillTile))
    return;
  const float* ml = part_ml + th * splits * 2;
  float mx = -INFINITY;
  for (int s = 0; s < splits; ++s) mx = fmaxf(mx, ml[2 * s]);
  for (int d = threadIdx.x; d < D; d += blockDim.x) {
    float sum = 0, val = 0;
    if (mx != -INFINITY) {
      for (int s = 0; s < splits; ++s) {
        if (ml[2 * s] == -INFINITY) continue;  // a split past this token's causal limit
        const float f = exp2f(ml[2 * s] - mx);
        sum += ml[2 * s + 1] * f;
        val += part_acc[(th * splits + s) * D + d] * f;
      }
    }
    out[th * D + d] = __float2bfloat16(sum > 0 ? val / sum : 0.0f);
  }
}

// The split partials live in one buffer per device (paged_attention has no workspace argument), never freed.
// It is allocated by reserve_paged_attention_workspace (the cuda model, before capturing its decode graphs)
// or else on the first split launch; a launch that would need it during capture before it exists runs
// unsplit instead.
constexpr std::size_t kSplitBufferBytes = std::size_t(16) << 20;
struct SplitBuffer {
  std::mutex mu;
  float* ptr[64] = {};
  int sms[64] = {};
};
SplitBuffer& split_buffer() {
  static SplitBuffer b;
  return b;
}

float* split_workspace(cudaStream_t s, int* sm_count) {
  int dev = 0;
  cudaGetDevice(&dev);
  SplitBuffer& b = split_buffer();
  std::lock_guard<std::mutex> lock(b.mu);
  if (dev < 0 || dev >= 64) return nullptr;
  if (!b.sms[dev]) cudaDeviceGetAttribute(&b.sms[dev], cudaDevAttrMultiProcessorCount, dev);
  *sm_count = b.sms[dev];
  if (!b.ptr[dev]) {
    cudaStreamCaptureStatus cap = cudaStreamCaptureStatusNone;
    cudaStreamIsCapturing(s, &cap);
    if (cap != cudaStreamCaptureStatusNone) return nullptr;
    void* p = nullptr;
    if (cudaMalloc(&p, kSplitBufferBytes) != cudaSuccess) return nullptr;
    b.ptr[dev] = static_cast<float*>(p);
  }
  return b.ptr[dev];
}

}  // namespace

void reserve_paged_attention_workspace() {
  int sms = 0;
  if (!split_workspace(nullptr, &sms)) throw std::runtime_error("paged_attention: cannot allocate the split buffer");
}

namespace {

template <int D, int G>
void launch(Params p, int tokens, cudaStream_t s) {
  const dim3 grid(unsigned(tokens) * p.num_kv_heads * p.head_chunks, p.splits);
  if constexpr (D == 64 || D == 128) {
    if (p.decode_mma) detail::decode_mma_kernel<D><<<grid, kWarps * 32, 0, s>>>(p);
    else paged_attention_kernel<D, G><<<grid, kWarps * 32, 0, s>>>(p);
  } else {
    paged_attention_kernel<D, G><<<grid, kWarps * 32, 0, s>>>(p);
  }
  if (p.splits > 1)
    combine_splits_kernel<<<unsigned(tokens) * p.num_heads, D < 128 ? 64 : 128, 0, s>>>(p.part_acc, p.part_ml,
                                                                                       p.splits, D, p.out, p);
}

template <int D>
void launch_d(Params p, int tokens, cudaStream_t s) {
  if (p.group == 1) return launch<D, 1>(p, tokens, s);
  if (p.group == 2) return launch<D, 2>(p, tokens, s);
  if (p.group <= 4) return launch<D, 4>(p, tokens, s);
  return launch<D, 8>(p, tokens, s);
}

}  // namespace

void paged_attention(const bf16* q, int q_stride, int num_heads, int num_kv_heads, int head_dim,
                     const bf16* k_cache, const bf16* v_cache, const AttnBatch& b, float scale, bf16* out,
                     cudaStream_t s) {
  if (b.num_tokens <= 0) return;
  if (num_kv_heads <= 0 || num_heads % num_kv_heads != 0)
    throw std::invalid_argument("paged_attention: num_heads must be a multiple of num_kv_heads");
  if (q_stride % 8 != 0 || !detail::aligned16(q) || !detail::aligned16(k_cache) || !detail::aligned16(v_cache))
    throw std::invalid_argument("paged_attention: q, caches must be 16-byte aligned");
  Params p{};
  p.q = q, p.q_stride = q_stride, p.num_heads = num_heads, p.num_kv_heads = num_kv_heads;
  p.group = num_heads / num_kv_heads;
  const int g_max = p.group == 1 ? 1 : p.group == 2 ? 2 : p.group <= 4 ? 4 : 8;
  p.head_chunks = (p.group + g_max - 1) / g_max;
  // TROUPE_ATTN_DECODE_MMA=0 keeps the per-lane kernel for the tokens outside uniform prefill tiles.
  static const bool no_decode_mma = env_is("TROUPE_ATTN_DECODE_MMA", "0");
  p.decode_mma = !no_decode_mma && detail::prefill_mma_supported(head_dim) && p.group <= 16;
  if (p.decode_mma) p.head_chunks = 1;  // the whole GQA group is the mma's 16 rows
  p.k_cache = k_cache, p.v_cache = v_cache;
  p.token_seq = b.token_seq, p.positions = b.positions, p.block_tables = b.block_tables;
  p.max_blocks = b.max_blocks_per_seq, p.block_size = b.block_size;
  p.scale_log2 = scale * kLog2e;
  p.out = out;
  p.num_tokens = b.num_tokens;
  // TROUPE_ATTN_NO_MMA=1 keeps every token on the per-token kernel (to compare the two paths).
  static const bool no_mma = env_is("TROUPE_ATTN_NO_MMA", "1");
  p.mma_tiles = !no_mma && detail::prefill_mma_supported(head_dim) && b.num_tokens >= detail::kPrefillTile;
  if (p.mma_tiles)
    detail::prefill_attention_mma(q, q_stride, num_heads, num_kv_heads, head_dim, k_cache, v_cache, b, p.scale_log2,
                                  out, s);
  // Split the keys when the batch alone gives fewer than ~8 blocks per SM, with at least 128 keys a split.
  p.splits = 1;
  p.split_len = std::max(b.max_seq_len, 1);
  const long long blocks = 1LL * b.num_tokens * num_kv_heads * p.head_chunks;
  int sms = 0;
  if (b.max_seq_len > 256) {
    float* ws = split_workspace(s, &sms);
    const long long target = 8LL * sms;
    int splits = int(std::min<long long>((target + blocks - 1) / blocks, (b.max_seq_len + 127) / 128));
    const std::size_t per_split = std::size_t(b.num_tokens) * num_heads * (head_dim + 2) * sizeof(float);
    splits = int(std::min<std::size_t>(splits, kSplitBufferBytes / per_split));
    if (ws && splits > 1) {
      p.splits = splits;
      p.split_len = (b.max_seq_len + splits - 1) / splits;
      p.split_len = (p.split_len + 63) / 64 * 64;
      p.splits = (b.max_seq_len + p.split_len - 1) / p.split_len;
      p.part_acc = ws;
      p.part_ml = ws + std::size_t(b.num_tokens) * num_heads * p.splits * head_dim;
    }
  }
  switch (head_dim) {
    case 8: launch_d<8>(p, b.num_tokens, s); break;
    case 16: launch_d<16>(p, b.num_tokens, s); break;
    case 32: launch_d<32>(p, b.num_tokens, s); break;
    case 64: launch_d<64>(p, b.num_tokens, s); break;
    case 128: launch_d<128>(p, b.num_tokens, s); break;
    case 256: launch_d<256>(p, b.num_tokens, s); break;
    default: throw std::invalid_argument("paged_attention: head_dim " + std::to_string(head_dim) +
                                         " is not one of 8, 16, 32, 64, 128, 256");
  }
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) throw std::runtime_error(std::string("paged_attention: ") + cudaGetErrorString(e));
}

}  // namespace troupe::kernels
