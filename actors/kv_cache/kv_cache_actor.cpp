#include "actors/kv_cache/kv_cache_actor.hpp"

#include "actors/kv_cache/kv_cache_manager.hpp"

#include <memory>

namespace troupe {

kv_cache_actor::behavior_type kv_cache_manager(kv_cache_actor::pointer self, std::uint32_t num_blocks,
                                               std::uint32_t block_size, bool enable_prefix_caching) {
  auto mgr = std::make_shared<KvCacheManager>(num_blocks, block_size, enable_prefix_caching);
  return {
    [mgr](const KvRequestMsg& req) -> KvReplyMsg { return mgr->exchange(req); },
    [mgr](metrics_atom) -> MetricsMsg {
      return MetricsMsg::make([&](schema::MetricsSnapshot::Builder b) {
        b.setKvBlocksTotal(mgr->num_total());
        b.setKvBlocksFree(mgr->num_free());
        b.setKvBlocksOwned(mgr->num_owned());
        b.setPrefixCacheQueriesTotal(mgr->stats().queries);
        b.setPrefixCacheHitsTotal(mgr->stats().hits);
      });
    },
  };
}

}  // namespace troupe
