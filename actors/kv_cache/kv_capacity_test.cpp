#include <boost/test/unit_test.hpp>

#include "actors/kv_cache/kv_capacity.hpp"

using namespace troupe;

BOOST_AUTO_TEST_CASE(capacity_follows_vllm_rules) {
  // DeepSeek-V3 MLA: 61 layers, 512 + 64 values per token and layer, bf16, block 64.
  auto per_block = kv_bytes_per_block(64, 61, 576, 2);
  BOOST_CHECK_EQUAL(per_block, 64ull * 61 * 576 * 2);
  DeviceMemory mem{80ull << 30, 60ull << 30};
  std::uint64_t budget = static_cast<std::uint64_t>(double(80ull << 30) * 0.9);
  BOOST_CHECK_EQUAL(kv_blocks_from_memory(mem, 0.9, per_block), (budget - (60ull << 30)) / per_block);
  BOOST_CHECK_THROW(kv_blocks_from_memory(mem, 0.7, per_block), std::runtime_error);  // 56 GiB < 60 GiB used
  // The override wins anywhere, cuda included; cpu/sim default to max-num-seqs full-length sequences.
  BOOST_CHECK_EQUAL(resolve_kv_blocks("cuda", 1234, 4096, 16, 256, mem, 0.9, per_block), 1234u);
  BOOST_CHECK_EQUAL(resolve_kv_blocks("cuda", std::nullopt, 4096, 16, 256, mem, 0.9, per_block),
                    kv_blocks_from_memory(mem, 0.9, per_block));
  BOOST_CHECK_EQUAL(resolve_kv_blocks("sim", std::nullopt, 4096, 16, 256), 256u * 256u);
  BOOST_CHECK_EQUAL(resolve_kv_blocks("cpu", std::nullopt, 100, 16, 2), 14u);
  BOOST_CHECK_THROW(resolve_kv_blocks("cuda", std::nullopt, 4096, 16, 256), std::invalid_argument);
}
