#pragma once
// Linears that read the same input, stacked by rows into one GEMM at load: DeepSeek-V3/R1's q_a_proj (1536 rows)
// and kv_a_proj_with_mqa (576 rows) both read the normed hidden state, so one [2112, 7168] GEMM replaces two at
// decode (measured at m = 1: 16.3 us against 14.5 + 12.2) and the activations are quantized to FP8 once.
//
//   FP8: rows      [ part 0 (n0, a multiple of 128) | part 1 (n1) | ... ]
//        scales    [ ceil(n0/128) rows              | ceil(n1/128) rows | ... ]   (whole blocks stack)
#include "model/cuda/weight_loader.hpp"

#include <string>
#include <utility>
#include <vector>

namespace troupe::cuda {

// parts: (tensor name, rows n_i), every one [n_i, k]. FP8 when every part is FP8 in the checkpoint, k % 128 == 0 and
// every part but the last ends on a 128-row block; bf16 when no part would be FP8 (WeightLoader::linear's rule).
// Mixed cases return an empty Linear (n == 0): the caller keeps the parts separate. New buffers go to `store`.
Linear stack_linears(WeightLoader& w, std::vector<DeviceBuffer>& store,
                     const std::vector<std::pair<std::string, int>>& parts, int k);

}  // namespace troupe::cuda
