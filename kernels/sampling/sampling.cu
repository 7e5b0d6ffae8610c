// GPU sampling with the cpu sampler's semantics (model/sampling): penalties; greedy = argmax with the lowest
// id on ties; otherwise temperature, then min_p, top_k, top_p (vLLM's order) and a draw.
//
// One block of 1024 threads per row; the row is re-read from L2 for each pass. Every filter keeps a prefix
// of the tokens sorted by (value descending, id ascending), so the kept set is described by a cut
// (key ck, id cid): token i stays when key(z_i) > ck, or key(z_i) == ck and i <= cid. Cuts are found by
// radix selection over the order-preserving 32-bit key of z (4 passes of 8 bits): by count for top_k, by
// probability mass for top_p. Masses are summed as 32.32 fixed point in 64-bit integers, so every sum is
// exact and order-independent: the same (seed, step) always gives the same token.
//
// The draw is Gumbel-max: argmax over kept i of z_i - log(-log(u_i)), u_i a counter-based hash of (seed,
// step, i). It samples softmax(z) over the kept set exactly and needs no prefix sum.
//
// Selection starts with linear bins of zmax - z (1/32 wide): logits share few exponent bytes, so a radix
// pass over raw key bits would pile 100k shared atomics onto a handful of bins.
#include "kernels/core/launch.hpp"
#include "kernels/sampling/sampling.hpp"

#include <cuda_runtime.h>

#include <climits>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace troupe::kernels {
namespace {

constexpr int kThreads = 1024;
constexpr int kWarps = kThreads / 32;
constexpr double kFixedOne = 4294967296.0;  // 2^32: a probability ratio of 1 in fixed point

struct Pair {
  float v;
  int i;
};

__device__ __forceinline__ bool better(Pair a, Pair b) { return a.v > b.v || (a.v == b.v && a.i < b.i); }

__device__ Pair warp_best(Pair p) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const Pair q{__shfl_xor_sync(0xffffffffu, p.v, o), __shfl_xor_sync(0xffffffffu, p.i, o)};
    if (better(q, p)) p = q;
  }
  return p;
}

// Every thread gets the block's best pair. The order is total, so the result is unique.
__device__ Pair block_best(Pair p, Pair* red) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  p = warp_best(p);
  __syncthreads();
  if (lane == 0) red[warp] = p;
  __syncthreads();
  return warp_best(red[lane]);
}

// Fixed assignment of elements to threads and a fixed tree: deterministic.
__device__ float block_sum(float v, float* red) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  __syncthreads();
  if (lane == 0) red[warp] = v;
  __syncthreads();
  v = red[lane];
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ unsigned okey(float z) {  // larger z -> larger key; -0 and +0 alike
  const unsigned u = __float_as_uint(z + 0.0f);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

__device__ __forceinline__ std::uint64_t mix(std::uint64_t x) {  // splitmix64's finalizer
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

constexpr int kDeltaBins = 1024;     // the coarse pre-selection: bins of zmax - z, 1/32 wide
constexpr float kBinsPerUnit = 32.0f;

struct Shared {
  Pair pair[kWarps];
  float f[kWarps];
  int counts[kWarps];
  unsigned hist[256];
  unsigned long long mass[256];
  unsigned dhist[kDeltaBins];
  unsigned long long dmass[kDeltaBins];
  int sel, found, skip, bin;
  unsigned rem;
  unsigned long long above;
  double target;  // top_p times the kept mass (fixed point)
};

// Calls f(i, x[i]) for this thread's elements: 16-byte loads where the row allows (every pass over a row
// is latency bound on one SM, so 4 values per load matter).
template <class F>
__device__ __forceinline__ void for_each(const float* x, int vocab, F&& f) {
  if ((vocab & 3) == 0 && (reinterpret_cast<std::uintptr_t>(x) & 15) == 0) {
    const float4* x4 = reinterpret_cast<const float4*>(x);
#pragma unroll 4
    for (int j = threadIdx.x; j < vocab / 4; j += kThreads) {
      const float4 v = x4[j];
      f(4 * j, v.x), f(4 * j + 1, v.y), f(4 * j + 2, v.z), f(4 * j + 3, v.w);
    }
  } else {
    for (int i = threadIdx.x; i < vocab; i += kThreads) f(i, x[i]);
  }
}

// The row after temperature and the filters found so far.
struct Row {
  const float* x;
  int vocab;
  float inv_t, zmax, z_min;  // z_min: min_p's threshold zmax + log(min_p) (-inf without min_p)
  bool cut = false;
  unsigned ck = 0;
  int cid = INT_MAX;
  __device__ float z(int i) const { return x[i] * inv_t; }
  __device__ bool kept(int i, float zi) const {
    if (zi < z_min) return false;  // p_i < min_p * p_max  <=>  z_i < zmax + log(min_p)
    if (!cut) return true;
    const unsigned k = okey(zi);
    return k > ck || (k == ck && i <= cid);
  }
  // Monotone in z (non-increasing), so the bins cut the sorted order into contiguous runs.
  __device__ int delta_bin(float zi) const {
    const float d = (zmax - zi) * kBinsPerUnit;
    return d < float(kDeltaBins - 1) ? int(d) : kDeltaBins - 1;
  }
  __device__ unsigned long long fixed_mass(float zi) const {  // one definition for every pass: consistent sums
    return (unsigned long long)(__expf(zi - zmax) * kFixedOne);
  }
};

// The id of the n-th (1-based) token in id order with key == ck among the kept ones.
__device__ int nth_tie(const Row& r, unsigned ck, unsigned n, Shared& sh) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  unsigned running = 0;
  for (int base = 0; base < r.vocab; base += kThreads) {
    const int i = base + threadIdx.x;
    bool f = false;
    if (i < r.vocab) {
      const float zi = r.z(i);
      f = okey(zi) == ck && r.kept(i, zi);
    }
    const unsigned ballot = __ballot_sync(0xffffffffu, f);
    if (lane == 0) sh.counts[warp] = __popc(ballot);
    __syncthreads();
    unsigned before = 0, total = 0;
    for (int w = 0; w < kWarps; ++w) {
      before += w < warp ? sh.counts[w] : 0;
      total += sh.counts[w];
    }
    if (running + total >= n) {
      const unsigned rank = running + before + __popc(ballot & ((1u << lane) - 1)) + 1;
      if (f && rank == n) sh.found = i;
      __syncthreads();
      return sh.found;
    }
    running += total;
    __syncthreads();
  }
  return INT_MAX;
}

// Warp 0 finds the first delta bin (from the top) whose inclusive count / mass reaches the target (k, or
// top_p times the total kept mass, which the scan also yields): each lane sums 32 consecutive bins, a shuffle
// scan finds the lane, that lane walks its bins. Sets sh.bin (-1: none), sh.rem (count still needed inside
// the bin), sh.above (mass of the bins before it) and sh.target.
__device__ void find_delta_bin(bool by_mass, unsigned k, float top_p, Shared& sh) {
  if (threadIdx.x >= 32) return;
  const int lane = threadIdx.x;
  unsigned c = 0;
  unsigned long long m = 0;
  for (int b = lane * 32; b < lane * 32 + 32; ++b) c += sh.dhist[b], m += sh.dmass[b];
  unsigned ci = c;
  unsigned long long mi = m;
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    const unsigned cu = __shfl_up_sync(0xffffffffu, ci, o);
    const unsigned long long mu = __shfl_up_sync(0xffffffffu, mi, o);
    if (lane >= o) ci += cu, mi += mu;
  }
  const double target = double(top_p) * double(__shfl_sync(0xffffffffu, mi, 31));
  if (lane == 0) sh.target = target;
  const bool reach = by_mass ? double(mi) >= target : ci >= k;
  const unsigned ballot = __ballot_sync(0xffffffffu, reach);
  if (lane == 0 && ballot == 0) sh.bin = -1;
  if (ballot == 0 || lane != __ffs(ballot) - 1) return;
  unsigned cc = ci - c;
  unsigned long long mm = mi - m;
  for (int b = lane * 32; b < lane * 32 + 32; ++b) {
    if (by_mass ? double(mm + sh.dmass[b]) >= target : cc + sh.dhist[b] >= k) {
      sh.bin = b, sh.rem = k - cc, sh.above = mm;
      return;
    }
    cc += sh.dhist[b], mm += sh.dmass[b];
  }
  sh.bin = -1;
}

// Selection over the sorted order. by_mass == false: the key of the k-th kept token (count). by_mass ==
// true: the key of the first token whose inclusive fixed-point mass reaches `target`. First a pass over
// linear bins of zmax - z (spread out, so shared atomics rarely collide), then 4 radix passes of 8 key bits
// over the one bin that holds the answer. Leaves the final radix bin's count in sh.hist[sh.sel].
__device__ unsigned radix_select(const Row& r, bool by_mass, unsigned k, float top_p, Shared& sh, bool* skip) {
  for (int b = threadIdx.x; b < kDeltaBins; b += kThreads) sh.dhist[b] = 0, sh.dmass[b] = 0;
  __syncthreads();
  for_each(r.x, r.vocab, [&](int i, float xi) {
    const float zi = xi * r.inv_t;
    if (!r.kept(i, zi)) return;
    const int b = r.delta_bin(zi);
    atomicAdd(&sh.dhist[b], 1u);
    if (by_mass) atomicAdd(&sh.dmass[b], r.fixed_mass(zi));
  });
  __syncthreads();
  find_delta_bin(by_mass, k, top_p, sh);
  __syncthreads();
  const int bin = sh.bin;
  const double target = sh.target;
  if (bin < 0) {  // fewer than k kept, or rounding left the mass short: keep everything
    *skip = true;
    return 0;
  }
  unsigned prefix = 0, mask = 0;
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int b = threadIdx.x; b < 256; b += kThreads) sh.hist[b] = 0, sh.mass[b] = 0;
    __syncthreads();
    for_each(r.x, r.vocab, [&](int i, float xi) {
      const float zi = xi * r.inv_t;
      const unsigned key = okey(zi);
      if ((key & mask) != prefix || r.delta_bin(zi) != bin || !r.kept(i, zi)) return;
      const int d = (key >> shift) & 255;
      atomicAdd(&sh.hist[d], 1u);
      if (by_mass) atomicAdd(&sh.mass[d], r.fixed_mass(zi));
    });
    __syncthreads();
    if (threadIdx.x == 0) {
      unsigned long long cum = sh.above;
      unsigned ccount = 0;
      int s = -1;
      for (int b = 255; b >= 0; --b) {
        if (sh.hist[b] == 0) continue;
        if (by_mass ? double(cum + sh.mass[b]) >= target : ccount + sh.hist[b] >= sh.rem) {
          s = b;
          break;
        }
        cum += sh.mass[b];
        ccount += sh.hist[b];
      }
      sh.skip = s < 0;  // cannot happen (the bin holds the answer); kept as a guard
      sh.sel = s;
      sh.above = cum;
      if (!by_mass && s >= 0) sh.rem -= ccount;
    }
    __syncthreads();
    if (sh.skip) {
      *skip = true;
      return 0;
    }
    prefix |= unsigned(sh.sel) << shift;
    mask |= 255u << shift;
  }
  *skip = false;
  return prefix;
}

__device__ __forceinline__ unsigned fmix32(unsigned x) {  // murmur3's finalizer
  x ^= x >> 16;
  x *= 0x85ebca6bu;
  x ^= x >> 13;
  x *= 0xc2b2ae35u;
  return x ^ (x >> 16);
}

__device__ int draw(const float* x, int vocab, const SampleParams& P, float xmax, Shared& sh) {
  Row r{x, vocab, 1.0f / P.temperature, 0, -INFINITY};
  r.zmax = xmax * r.inv_t;
  if (P.min_p > 0) r.z_min = r.zmax + logf(P.min_p);
  if (P.top_k > 0 && P.top_k < vocab) {
    bool skip = false;
    const unsigned ck = radix_select(r, false, unsigned(P.top_k), 1.0f, sh, &skip);
    if (!skip) {
      const unsigned ties = sh.hist[sh.sel], need = sh.rem;
      __syncthreads();
      const int cid = need >= ties ? INT_MAX : nth_tie(r, ck, need, sh);
      r.cut = true, r.ck = ck, r.cid = cid;
    }
  }
  if (P.top_p < 1.0f) {
    // the first token (in sorted order) whose inclusive mass reaches top_p * the kept mass
    bool skip = false;
    const unsigned ck = radix_select(r, true, 0, P.top_p, sh, &skip);
    if (!skip) {
      const double target = sh.target;
      // Each tie at ck carries the same mass e; the j-th (0-based) stays while above + j * e < target.
      const unsigned ties = sh.hist[sh.sel];
      const double e = double(sh.mass[sh.sel]) / ties, room = target - double(sh.above);
      unsigned need = e > 0 ? unsigned(ceil(room / e)) : ties;
      need = need < 1 ? 1 : need > ties ? ties : need;
      __syncthreads();
      // sh.hist counted only kept ties, so a top_k cut inside the same tie group stays in force.
      int cid;
      if (need >= ties) cid = r.cut && ck == r.ck ? r.cid : INT_MAX;
      else cid = nth_tie(r, ck, need, sh);
      r.cut = true, r.ck = ck, r.cid = cid;
    }
  }
  // Gumbel-max with a 32-bit counter hash keyed by (seed, step): cheap enough for 129k draws on one SM.
  const std::uint64_t h = mix(mix(P.seed + 0x9e3779b97f4a7c15ull) ^ (P.step * 0xd1b54a32d192ed03ull));
  const unsigned k0 = unsigned(h), k1 = unsigned(h >> 32);
  Pair best{-INFINITY, INT_MAX};
  for_each(x, vocab, [&](int i, float xi) {
    const float zi = xi * r.inv_t;
    if (!r.kept(i, zi)) return;
    const unsigned bits = fmix32(fmix32(unsigned(i) ^ k0) + k1);
    const float u = (float(bits >> 8) + 0.5f) * (1.0f / 16777216.0f);  // (0, 1)
    const Pair c{zi - __logf(-__logf(u)), i};
    if (better(c, best)) best = c;
  });
  best = block_best(best, sh.pair);
  return best.i == INT_MAX ? -1 : best.i;
}

__device__ float log_sum_exp(const float* x, int vocab, float xmax, Shared& sh) {
  float s = 0;
  for_each(x, vocab, [&](int, float xi) { s += expf(xi - xmax); });
  return xmax + logf(block_sum(s, sh.f));
}

// The n best of a row in (value desc, id asc) order as logprobs, one block pass each (n <= 20: cheaper than a
// sort); slots n..max_top-1 get id -1.
__device__ void write_top(const float* x, int vocab, float lse, int n, int max_top, std::int32_t* ids, float* lps,
                          Shared& sh) {
  Pair prev{INFINITY, -1};
  for (int j = 0; j < n; ++j) {  // the next best strictly after prev
    Pair b{-INFINITY, INT_MAX};
    for_each(x, vocab, [&](int i, float xi) {
      const Pair c{xi, i};
      if (better(prev, c) && better(c, b)) b = c;
    });
    b = block_best(b, sh.pair);
    if (threadIdx.x == 0) ids[j] = b.i == INT_MAX ? -1 : b.i, lps[j] = b.v - lse;
    prev = b;
  }
  if (threadIdx.x == 0)
    for (int j = n; j < max_top; ++j) ids[j] = -1, lps[j] = -INFINITY;
}

__global__ void __launch_bounds__(kThreads) sample_kernel(const float* logits, int vocab, const SampleParams* params,
                                                          std::int32_t* tokens, float* logprob, std::int32_t* top_ids,
                                                          float* top_logprobs, int max_logprobs) {
  __shared__ Shared sh;
  const std::size_t row = blockIdx.x;
  const float* x = logits + row * vocab;
  const SampleParams P = params[row];
  Pair best{-INFINITY, INT_MAX};
  for_each(x, vocab, [&](int i, float xi) {
    const Pair c{xi, i};
    if (better(c, best)) best = c;
  });
  best = block_best(best, sh.pair);
  int token = best.i == INT_MAX ? 0 : best.i;
  if (P.temperature >= 1e-5f) {
    const int d = draw(x, vocab, P, best.v, sh);
    if (d >= 0) token = d;
  }
  if (threadIdx.x == 0) tokens[row] = token;
  const int n_top = top_ids && P.num_logprobs > 0 ? min(P.num_logprobs, max_logprobs) : 0;
  if (!logprob && n_top == 0) return;
  const float lse = log_sum_exp(x, vocab, best.v, sh);
  if (threadIdx.x == 0 && logprob) logprob[row] = x[token] - lse;
  if (top_ids) write_top(x, vocab, lse, n_top, max_logprobs, top_ids + row * max_logprobs,
                         top_logprobs + row * max_logprobs, sh);
}

// prompt_logprobs: one block per row; targets[row] < 0 marks a row that scores no prompt token.
// rank = #{i : lp_i >= lp_target} with lp = x - lse in float, as the cpu's position_logprob counts it.
__global__ void __launch_bounds__(kThreads) position_kernel(const float* logits, int vocab, const std::int32_t* targets,
                                                            int n_top, int max_top, float* logprob, std::int32_t* rank,
                                                            std::int32_t* top_ids, float* top_logprobs) {
  __shared__ Shared sh;
  const std::size_t row = blockIdx.x;
  const int target = targets[row];
  if (target < 0 || target >= vocab) return;
  const float* x = logits + row * vocab;
  Pair best{-INFINITY, INT_MAX};
  for_each(x, vocab, [&](int i, float xi) {
    const Pair c{xi, i};
    if (better(c, best)) best = c;
  });
  best = block_best(best, sh.pair);
  const float lse = log_sum_exp(x, vocab, best.v, sh);
  const float own = x[target] - lse;
  float ge = 0;
  for_each(x, vocab, [&](int, float xi) { ge += (xi - lse) >= own ? 1.0f : 0.0f; });
  ge = block_sum(ge, sh.f);  // exact: counts stay far below 2^24
  if (threadIdx.x == 0) logprob[row] = own, rank[row] = std::int32_t(ge);
  write_top(x, vocab, lse, n_top, max_top, top_ids + row * max_top, top_logprobs + row * max_top, sh);
}

__global__ void penalties_kernel(float* logits, int vocab, const SampleParams* params, const std::uint16_t* counts,
                                 const std::uint8_t* prompt_mask) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= vocab) return;
  const std::size_t at = std::size_t(blockIdx.y) * vocab + i;
  const SampleParams& P = params[blockIdx.y];
  const unsigned c = counts ? counts[at] : 0;
  const bool in_prompt = prompt_mask && prompt_mask[at];
  float l = logits[at];
  if (P.repetition_penalty != 1.0f && (in_prompt || c > 0))
    l = l > 0 ? l / P.repetition_penalty : l * P.repetition_penalty;
  if (c > 0) l -= P.frequency_penalty * float(c) + P.presence_penalty;
  logits[at] = l;
}

}  // namespace

void apply_penalties(float* logits, int rows, int vocab, const SampleParams* params, const std::uint16_t* counts,
                     const std::uint8_t* prompt_mask, cudaStream_t s) {
  if (rows <= 0 || vocab <= 0) return;
  if (rows > 65535) throw std::invalid_argument("apply_penalties: at most 65535 rows");
  penalties_kernel<<<dim3((vocab + 255) / 256, rows), 256, 0, s>>>(logits, vocab, params, counts, prompt_mask);
  check_launch("apply_penalties");
}

// The sampler keeps its state in shared memory: no workspace is needed; the entry point stays for callers
// that size buffers up front.
std::size_t sample_workspace_bytes(int, int) { return 256; }

void sample(const float* logits, int rows, int vocab, const SampleParams* params, void*, std::int32_t* tokens,
            float* logprob, std::int32_t* top_ids, float* top_logprobs, int max_logprobs, cudaStream_t s) {
  if (rows <= 0) return;
  if (vocab <= 0) throw std::invalid_argument("sample: empty vocabulary");
  if (top_ids && (!top_logprobs || max_logprobs <= 0))
    throw std::invalid_argument("sample: top_ids needs top_logprobs and max_logprobs > 0");
  sample_kernel<<<rows, kThreads, 0, s>>>(logits, vocab, params, tokens, logprob, top_ids, top_logprobs,
                                          max_logprobs);
  check_launch("sample");
}

void position_logprobs(const float* logits, int rows, int vocab, const std::int32_t* targets, int num_top, int max_top,
                       float* logprob, std::int32_t* rank, std::int32_t* top_ids, float* top_logprobs, cudaStream_t s) {
  if (rows <= 0) return;
  if (vocab <= 0) throw std::invalid_argument("position_logprobs: empty vocabulary");
  if (num_top < 0 || num_top > max_top) throw std::invalid_argument("position_logprobs: num_top outside [0, max_top]");
  position_kernel<<<rows, kThreads, 0, s>>>(logits, vocab, targets, num_top, max_top, logprob, rank, top_ids,
                                            top_logprobs);
  check_launch("position_logprobs");
}

}  // namespace troupe::kernels
