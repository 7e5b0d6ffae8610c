#pragma once
// DeepSeek's shared experts as always-on routed experts. A layer's shared MLP (gate/up [S * inter, hidden],
// down [hidden, S * inter], S = n_shared_experts, inter = moe_intermediate_size) is cut into S pseudo-experts of
// the routed experts' shape and packed after them, so that at decode one moe_experts call runs routed + shared
// (the router appends their ids with weight 1.0: kernels::MoeRouting::always_on). Why: at batch 1 the separate
// shared MLP cost 3-5 small launches per layer (quantize, gate/up GEMM, SiLU, down GEMM) at 1-2.6 TB/s.
//
//   shared gate/up rows   [0, I) [I, 2I) ... -> pseudo-expert j's gate/up rows (contiguous)
//   shared down columns   [0, I) [I, 2I) ... -> pseudo-expert j's down [hidden, I]  (a strided copy)
//   FP8: inter % 128 == 0 (else the experts are bf16), so 128x128 scale blocks split along the same lines.
#include "kernels/moe/moe.hpp"
#include "model/cuda/weight_loader.hpp"

#include <string>

namespace troupe::cuda {

// Copies the shared MLP under `prefix` (".../mlp.shared_experts.") into experts first .. first + count - 1 of m,
// whose buffers the caller allocated for num_experts >= first + count. Synchronizes `s` (frees its staging).
void pack_shared_experts(WeightLoader& w, const std::string& prefix, const kernels::MoeWeights& m, int first,
                         int count, cudaStream_t s);

// Packed expert e as a dense MLP's linears (views, no copy): gate|up stacked [2 * inter, hidden], down
// [hidden, inter]. Batches too large to merge run a single shared expert (R1) through these: dense GEMMs read
// its weights once however many tokens.
Linear expert_gate_up(const kernels::MoeWeights& m, int e);
Linear expert_down(const kernels::MoeWeights& m, int e);

}  // namespace troupe::cuda
