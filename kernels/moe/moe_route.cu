// moe_route: transformers' DeepSeek routers, one warp per token. Selection ties go to the lower expert id (the
// cpu oracle's stable sort; torch.topk leaves them unspecified), and the chosen ids come out ascending, each
// with its weight, as model/cpu/moe.cpp returns them.
#include "kernels/moe/moe.hpp"

#include <stdexcept>
#include <string>

namespace troupe::kernels {

namespace {

constexpr int kWarps = 4;
constexpr int kMaxExperts = 1024, kMaxTopK = 32, kMaxGroups = 32;

struct RouteArgs {
  const float* logits;
  int n;
  MoeRouting r;
  std::int32_t* ids;
  float* weights;
};

__device__ __forceinline__ bool better(float v, int i, float bv, int bi) { return v > bv || (v == bv && i < bi); }

// Argmax over not-yet-taken experts, ties to the lower id; every lane gets the winner.
__device__ int warp_argmax(const float* choice, const unsigned char* taken, int E, int lane) {
  float bv = -INFINITY;
  int bi = 0x7fffffff;
  for (int e = lane; e < E; e += 32)
    if (!taken[e] && better(choice[e], e, bv, bi)) bv = choice[e], bi = e;
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, bv, off);
    const int oi = __shfl_xor_sync(0xffffffffu, bi, off);
    if (better(ov, oi, bv, bi)) bv = ov, bi = oi;
  }
  return bi;
}

// Keeps the topk_group best groups (a group's score: the sum of its top-2 choices, or its max); experts of the
// other groups get `fill` (-inf for V3, 0 for V2, exactly as the oracle).
__device__ void limit_groups(const MoeRouting& r, float* choice, int lane) {
  __shared__ float gscore_all[kWarps][kMaxGroups];
  __shared__ unsigned char keep_all[kWarps][kMaxGroups];
  float* gscore = gscore_all[threadIdx.x / 32];
  unsigned char* keep = keep_all[threadIdx.x / 32];
  const int per = r.num_experts / r.n_group;
  if (lane < r.n_group) {
    float top1 = -INFINITY, top2 = -INFINITY;
    for (int e = lane * per; e < (lane + 1) * per; ++e) {
      const float v = choice[e];
      if (v > top1) top2 = top1, top1 = v;
      else if (v > top2) top2 = v;
    }
    gscore[lane] = r.group_by_top2_sum ? top1 + (per > 1 ? top2 : 0.f) : top1;
  }
  __syncwarp();
  if (lane < r.n_group) {
    int rank = 0;
    for (int g = 0; g < r.n_group; ++g) rank += better(gscore[g], g, gscore[lane], lane);
    keep[lane] = rank < r.topk_group;
  }
  __syncwarp();
  const float fill = r.group_by_top2_sum ? -INFINITY : 0.f;
  for (int e = lane; e < r.num_experts; e += 32)
    if (!keep[e / per]) choice[e] = fill;
  __syncwarp();
}

__global__ void __launch_bounds__(kWarps * 32) route_kernel(RouteArgs a) {
  extern __shared__ float smem[];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, E = a.r.num_experts, K = a.r.top_k;
  const int t = blockIdx.x * kWarps + warp;
  if (t >= a.n) return;  // whole warps leave: only __syncwarp below
  float* score = smem + warp * 2 * E;
  float* choice = score + E;
  unsigned char* taken = reinterpret_cast<unsigned char*>(smem + kWarps * 2 * E) + warp * E;
  const float* x = a.logits + std::size_t(t) * E;
  if (a.r.sigmoid) {
    for (int e = lane; e < E; e += 32) score[e] = 1.f / (1.f + expf(-x[e]));
  } else {
    float mx = -INFINITY, sum = 0.f;
    for (int e = lane; e < E; e += 32) mx = fmaxf(mx, x[e]);
    for (int off = 16; off > 0; off >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
    for (int e = lane; e < E; e += 32) sum += (score[e] = expf(x[e] - mx));
    for (int off = 16; off > 0; off >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, off);
    for (int e = lane; e < E; e += 32) score[e] /= sum;
  }
  for (int e = lane; e < E; e += 32) {
    choice[e] = score[e] + (a.r.correction_bias ? a.r.correction_bias[e] : 0.f);
    taken[e] = 0;
  }
  __syncwarp();
  if (a.r.group_by_top2_sum || a.r.n_group > 1) limit_groups(a.r, choice, lane);
  int chosen[kMaxTopK];
#pragma unroll
  for (int j = 0; j < kMaxTopK; ++j) {
    if (j < K) {
      chosen[j] = warp_argmax(choice, taken, E, lane);
      if (lane == 0) taken[chosen[j]] = 1;
      __syncwarp();
    }
  }
  if (lane != 0) return;
  // Ascending ids (insertion sort of at most 32), weights summed in that order like the oracle.
  for (int i = 1; i < K; ++i)
    for (int j = i; j > 0 && chosen[j - 1] > chosen[j]; --j) {
      const int tmp = chosen[j];
      chosen[j] = chosen[j - 1], chosen[j - 1] = tmp;
    }
  const bool v3 = a.r.group_by_top2_sum;
  const bool norm = a.r.norm_topk_prob && (v3 || K > 1);
  float denom = 1e-20f;
  for (int j = 0; j < K; ++j) denom += score[chosen[j]];
  const std::size_t row = std::size_t(t) * (K + a.r.always_on);
  for (int j = 0; j < K; ++j) {
    float w = score[chosen[j]];
    if (norm) w /= denom;
    if (v3 || !norm) w *= a.r.routed_scaling_factor;  // V3 scales after normalising; V2 only when it does not
    a.ids[row + j] = chosen[j];
    a.weights[row + j] = w;
  }
  for (int j = 0; j < a.r.always_on; ++j) {
    a.ids[row + K + j] = E + j;
    a.weights[row + K + j] = 1.0f;
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
  if (r.always_on < 0) fail("always_on must be >= 0");
  if (n <= 0) return;
  const std::size_t smem = std::size_t(kWarps) * r.num_experts * (2 * sizeof(float) + 1);
  route_kernel<<<(n + kWarps - 1) / kWarps, kWarps * 32, smem, s>>>(RouteArgs{logits, n, r, topk_ids, topk_weights});
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) throw std::runtime_error(std::string("moe_route: ") + cudaGetErrorString(e));
}

}  // namespace troupe::kernels
