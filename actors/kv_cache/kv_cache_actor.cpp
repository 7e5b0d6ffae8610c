#include "actors/kv_cache/kv_cache_actor.hpp"

#include "actors/kv_cache/block_pool.hpp"

#include <memory>

namespace troupe {

kv_cache_actor::behavior_type kv_cache_manager(kv_cache_actor::pointer self, std::uint32_t num_blocks,
                                               std::uint32_t block_size) {
  auto book = std::make_shared<KvBook>(num_blocks, block_size);
  return {
    [book](const KvRequestMsg& req) -> KvReplyMsg {
      auto v = req.view();
      for (auto id : v->getFrees()) book->free(id);
      auto allocs = v->getAllocs();
      return KvReplyMsg::make([&](schema::KvReply::Builder b) {
        auto grants = b.initGrants(allocs.size());
        for (unsigned i = 0; i < allocs.size(); ++i) {
          auto r = book->allocate(allocs[i].getRequestId(), allocs[i].getNumTokens());
          grants[i].setRequestId(allocs[i].getRequestId());
          grants[i].setOk(r.ok);
          auto ids = grants[i].initNewBlockIds(static_cast<unsigned>(r.new_blocks.size()));
          for (unsigned j = 0; j < r.new_blocks.size(); ++j) ids.set(j, r.new_blocks[j]);
        }
        b.setNumFreeBlocks(book->num_free());
        b.setNumTotalBlocks(book->num_total());
      });
    },
    [book](metrics_atom) -> MetricsMsg {
      return MetricsMsg::make([&](schema::MetricsSnapshot::Builder b) {
        b.setKvBlocksTotal(book->num_total());
        b.setKvBlocksFree(book->num_free());
        b.setKvBlocksOwned(book->num_owned());
      });
    },
  };
}

}  // namespace troupe
