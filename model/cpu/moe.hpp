#pragma once
// DeepSeek feed-forward: the dense SwiGLU MLP of the first first_k_dense_replace layers, and the MoE
// layers (router, routed SwiGLU experts, shared experts).
//
// Routing, as transformers and DeepSeek's own code do it:
//   V3 (noaux_tc):  s = sigmoid(logits); choice = s + e_score_correction_bias (selection only);
//                   group score = sum of the group's top-2 choice scores; keep the topk_group best groups;
//                   top-k experts by choice among them; weights = s[chosen] (unbiased),
//                   / sum when norm_topk_prob, then * routed_scaling_factor.
//   V2 (greedy | group_limited_greedy): s = softmax(logits); group score = the group's max; top-k by s;
//                   weights = s[chosen] / sum when norm_topk_prob (and top_k > 1), else * routed_scaling_factor.
#include "model/config/model_config.hpp"
#include "model/cpu/deepseek_ops.hpp"

#include <cstdint>
#include <vector>

namespace troupe::cpu {

struct MlpWeights {  // [inter, hidden], [inter, hidden], [hidden, inter]
  std::vector<float> gate, up, down;
  std::uint32_t inter = 0;
};

struct MoeWeights {
  std::vector<float> router;  // [n_routed_experts, hidden]
  std::vector<float> bias;    // e_score_correction_bias (V3), empty otherwise
  std::vector<MlpWeights> experts;  // experts [first_expert, first_expert + experts.size()): this rank's
  std::uint32_t first_expert = 0;
  MlpWeights shared;          // inter == 0 when the model has no shared experts (a rank: its columns)
};

struct Route {
  std::vector<std::uint32_t> expert;  // top_k ids, ascending
  std::vector<float> weight;          // matching weights
};

// One token's routing from its router logits (n_routed_experts floats).
Route route_token(const ModelConfig& c, const float* logits, const float* bias);

// y = down(silu(gate(x)) * up(x)) for `rows` rows of x
void mlp_forward(ThreadPool& pool, const MlpWeights& w, std::uint32_t hidden, const float* x, std::size_t rows,
                 float* y);

// y = sum over chosen experts of weight * expert(x) + shared(x), for `rows` rows of x. Routing is computed
// over all experts; a tensor-parallel rank runs only the experts it holds (and its share of the shared
// expert), so y is its partial sum and the ranks' all-reduce completes it.
void moe_forward(ThreadPool& pool, const ModelConfig& c, const MoeWeights& w, const float* x, std::size_t rows,
                 float* y);

}  // namespace troupe::cpu
