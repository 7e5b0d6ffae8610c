#include "model/cuda/stacked_linear.hpp"

namespace troupe::cuda {
namespace {
constexpr int kBlock = 128;
}

Linear stack_linears(WeightLoader& w, std::vector<DeviceBuffer>& store,
                     const std::vector<std::pair<std::string, int>>& parts, int k) {
  int fp8_parts = 0, n = 0;
  bool blocks_stack = true;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    fp8_parts += w.is_fp8(parts[i].first) && k % kBlock == 0;
    if (i + 1 < parts.size() && parts[i].second % kBlock) blocks_stack = false;
    n += parts[i].second;
  }
  Linear l;
  if (fp8_parts == int(parts.size()) && blocks_stack) {
    const std::size_t kb = std::size_t(k / kBlock);
    std::size_t scale_rows = 0;
    for (const auto& p : parts) scale_rows += std::size_t((p.second + kBlock - 1) / kBlock);
    store.emplace_back(std::size_t(n) * k);
    auto* w8 = store.back().get<fp8>();
    store.emplace_back(scale_rows * kb * 4);
    auto* s = store.back().get<float>();
    std::size_t row = 0, srow = 0;
    for (const auto& p : parts) {
      w.fp8_into(p.first, p.second, k, w8 + row * k, s + srow * kb);
      row += std::size_t(p.second);
      srow += std::size_t((p.second + kBlock - 1) / kBlock);
    }
    l.w8 = w8, l.scale = s;
  } else if (fp8_parts == 0) {
    store.emplace_back(std::size_t(n) * k * 2);
    auto* wb = store.back().get<bf16>();
    std::size_t row = 0;
    for (const auto& p : parts) {
      w.bf16_into(p.first, {p.second, k}, wb + row * k);
      row += std::size_t(p.second);
    }
    l.w = wb;
  } else {
    return l;
  }
  l.n = n, l.k = k;
  return l;
}

}  // namespace troupe::cuda
