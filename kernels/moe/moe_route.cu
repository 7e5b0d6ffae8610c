// moe_route: transformers' DeepSeek routers, one block per token, one thread per expert. Selection ties go to
// the lower expert id (the cpu oracle's stable sort; torch.topk leaves them unspecified), and the chosen ids come
// out ascending, each with its weight, as model/cpu/moe.cpp returns them.
//
// Each selection is a rank: an expert's rank is the number of experts that beat it (higher value, or equal
// value and lower id), so the top k are exactly the ranks below k, found by every thread at once instead of k
// argmax passes by one warp (a decode step's routing took 15-19 us of serial latency that way). Only an expert
// that fewer than k lanes of its own warp beat can be in the top k, and every expert that beats a top-k one is
// such a candidate too, so the global rank is counted over the candidates alone:
//
//   warp w, lane l: in-warp rank r (31 shuffles)  ->  r < k: candidate slot [w * k + r]
//   candidate: rank = how many of the (warps * k) slots beat it; chosen when rank < k
#include "kernels/moe/moe.hpp"

#include "kernels/core/launch.hpp"
#include "kernels/core/pdl.cuh"
#include "kernels/core/vec.cuh"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace troupe::kernels {

namespace {

constexpr int kMaxExperts = 1024, kMaxTopK = 32, kMaxGroups = 32;

struct RouteArgs {
  const float* logits;
  int n;
  MoeRouting r;
  std::int32_t* ids;
  float* weights;
};

__device__ __forceinline__ bool better(float v, int i, float bv, int bi) { return v > bv || (v == bv && i < bi); }

// How many of v[lo, hi) beat (c, e).
__device__ __forceinline__ int rank_in(const float* v, int lo, int hi, float c, int e) {
  int rank = 0;
#pragma unroll 8
  for (int j = lo; j < hi; ++j) rank += better(v[j], j, c, e);
  return rank;
}

__device__ float block_max(float v, float* red) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  __syncthreads();
  if (lane == 0) red[warp] = v;
  __syncthreads();
  v = lane < int(blockDim.x / 32) ? red[lane] : -INFINITY;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Keeps the topk_group best groups (a group's score: the sum of its top-2 choices, or its max); experts of the
// other groups get `fill` (-inf for V3, 0 for V2, exactly as the oracle). Called by the whole block.
__device__ void limit_groups(const MoeRouting& r, float* choice, int e) {
  __shared__ float top[2][kMaxGroups], gscore[kMaxGroups];
  __shared__ bool keep[kMaxGroups];
  const int per = r.num_experts / r.n_group, g = e / per;
  if (e < r.num_experts) {
    const int rank = rank_in(choice, g * per, (g + 1) * per, choice[e], e);
    if (rank < 2) top[rank][g] = choice[e];
  }
  __syncthreads();
  if (e < r.n_group) gscore[e] = r.group_by_top2_sum ? top[0][e] + (per > 1 ? top[1][e] : 0.f) : top[0][e];
  __syncthreads();
  if (e < r.n_group) keep[e] = rank_in(gscore, 0, r.n_group, gscore[e], e) < r.topk_group;
  __syncthreads();
  if (e < r.num_experts && !keep[g]) choice[e] = r.group_by_top2_sum ? -INFINITY : 0.f;
  __syncthreads();
}

// block: the experts rounded up to whole warps (at least one per group); grid: one block per token.
__global__ void __launch_bounds__(kMaxExperts) route_kernel(RouteArgs a) {
  __shared__ float score[kMaxExperts], choice[kMaxExperts], red[32], chosen_score[kMaxTopK];
  __shared__ int warp_chosen[32], cand_e[32 * kMaxTopK];
  __shared__ float cand_v[32 * kMaxTopK];
  const int E = a.r.num_experts, K = a.r.top_k, e = threadIdx.x, lane = e % 32, warp = e / 32;
  const bool live = e < E;
  const float bias = live && a.r.correction_bias ? a.r.correction_bias[e] : 0.f;  // a weight: before the wait
  detail::pdl_wait();     // the logits come from the router GEMV (pdl.cuh)
  detail::pdl_trigger();  // the expert GEMVs may be scheduled meanwhile; they wait for these ids
  const float x = live ? a.logits[std::size_t(blockIdx.x) * E + e] : -INFINITY;
  float s;
  if (a.r.sigmoid) {
    s = 1.f / (1.f + expf(-x));
  } else {
    const float mx = block_max(x, red);
    const float ex = live ? expf(x - mx) : 0.f;
    s = ex / detail::block_sum(ex, red);
  }
  if (live) {
    score[e] = s;
    choice[e] = s + bias;
  }
  __syncthreads();
  if (a.r.group_by_top2_sum || a.r.n_group > 1) limit_groups(a.r, choice, e);
  // Lanes past E hold (-inf, id >= E): they never beat a live expert.
  const float c = live ? choice[e] : -INFINITY;
  int wrank = 0;
  for (int o = 1; o < 32; ++o) {
    const int from = (lane + o) & 31;
    wrank += better(__shfl_sync(0xffffffffu, c, from), warp * 32 + from, c, e);
  }
  if (wrank < K) cand_v[warp * K + wrank] = c, cand_e[warp * K + wrank] = e;
  __syncthreads();
  bool chosen = false;
  if (live && wrank < K) {
    int rank = 0;
    for (int j = 0; j < int(blockDim.x / 32) * K; ++j) rank += better(cand_v[j], cand_e[j], c, e);
    chosen = rank < K;
  }
  // Output slot: the chosen experts in ascending id order (popcounts of the chosen below this thread).
  const unsigned ballot = __ballot_sync(0xffffffffu, chosen);
  if (lane == 0) warp_chosen[warp] = __popc(ballot);
  __syncthreads();
  int slot = __popc(ballot & ((1u << lane) - 1u));
  for (int w = 0; w < warp; ++w) slot += warp_chosen[w];
  if (chosen) chosen_score[slot] = score[e];
  __syncthreads();
  const std::size_t row = std::size_t(blockIdx.x) * (K + a.r.always_on);
  if (chosen) {
    const bool v3 = a.r.group_by_top2_sum;
    const bool norm = a.r.norm_topk_prob && (v3 || K > 1);
    float denom = 1e-20f;  // summed in ascending id order, like the oracle
    for (int j = 0; j < K; ++j) denom += chosen_score[j];
    float w = score[e];
    if (norm) w /= denom;
    if (v3 || !norm) w *= a.r.routed_scaling_factor;  // V3 scales after normalising; V2 only when it does not
    a.ids[row + slot] = e;
    a.weights[row + slot] = w;
  }
  if (e < a.r.always_on) {
    a.ids[row + K + e] = E + e;
    a.weights[row + K + e] = 1.0f;
  }
}

}  // namespace

void moe_route(const float* logits, int n, const MoeRouting& r, std::int32_t* topk_ids, float* topk_weights,
               cudaStream_t s) {
  auto fail = [](const std::string& m) { throw std::invalid_argument("moe_route: " + m); };
  if (r.num_experts <= 0 || r.num_experts > kMaxExperts) fail("num_experts must be in 1..1024");
  if (r.top_k <= 0 || r.top_k > kMaxTopK || r.top_k > r.num_experts) fail("top_k must be in 1..min(32, experts)");
  if (r.n_group <= 0 || r.n_group > kMaxGroups || r.num_experts % r.n_group != 0)
    fail("n_group must be in 1..32 and divide num_experts");
  if (r.topk_group <= 0 || r.topk_group > r.n_group) fail("topk_group must be in 1..n_group");
  if (r.always_on < 0 || r.always_on > 32) fail("always_on must be in 0..32");  // one warp writes them
  if (n <= 0) return;
  const int threads = std::max(32, (r.num_experts + 31) / 32 * 32);
  launch_pdl(route_kernel, dim3(n), dim3(threads), 0, s, "moe_route", RouteArgs{logits, n, r, topk_ids, topk_weights});
}

}  // namespace troupe::kernels
