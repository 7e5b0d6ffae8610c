#pragma once
// paged_attention's split-KV partials (ops.hpp has the kernel's contract) live in one buffer per device,
// allocated on the first split launch. A CUDA graph bakes its address in: callers that capture graphs
// reserve it up front (before sizing the KV cache), so no split launch ever allocates or is left unsplit.
#include <cuda_runtime.h>

namespace troupe::kernels {

// Allocates the current device's split buffer if it does not exist yet. Throws std::runtime_error when
// the allocation fails.
void reserve_paged_attention_workspace();

}  // namespace troupe::kernels
