#pragma once
#include "runtime/interfaces.hpp"

#include <caf/typed_event_based_actor.hpp>

namespace troupe {
// A thin shell around KvCacheManager: one batched exchange per step.
kv_cache_actor::behavior_type kv_cache_manager(kv_cache_actor::pointer self, std::uint32_t num_blocks,
                                               std::uint32_t block_size, bool enable_prefix_caching);
}
