// kernels/sampling at DeepSeek-V3's vocabulary (129280). The roofline counts one read of the logits; the
// sampler makes several passes over each row (from L2 after the first), so its share shows that cost.
#include "kernels/sampling/sampling.hpp"
#include "tools/kernel_bench/kernel_bench.hpp"

#include <string>
#include <vector>

namespace troupe::kernel_bench {
namespace {

using kernels::SampleParams;

KERNEL_BENCH(sampling) {
  const int vocab = 129280;
  for (int rows : {1, 64, 256}) {
    Buffer logits(std::size_t(rows) * vocab * 4), params(std::size_t(rows) * sizeof(SampleParams));
    Buffer tokens(rows * 4), lp(rows * 4), ids(std::size_t(rows) * 20 * 4), tlp(std::size_t(rows) * 20 * 4);
    Buffer counts(std::size_t(rows) * vocab * 2), mask(std::size_t(rows) * vocab);
    fill_f32(logits.as<float>(), std::size_t(rows) * vocab, -10, 10, 1);
    cudaMemset(counts.as<void>(), 0, std::size_t(rows) * vocab * 2);
    cudaMemset(mask.as<void>(), 0, std::size_t(rows) * vocab);
    const double bytes = double(rows) * vocab * 4;
    struct Mode { const char* name; float t, top_p; int top_k, logprobs; };
    for (Mode mode : {Mode{"greedy", 0, 1, -1, -1}, Mode{"T=0.7", 0.7f, 1, -1, -1},
                      Mode{"T=0.7 top_k=50 top_p=0.9", 0.7f, 0.9f, 50, -1}, Mode{"T=1 top_p=0.95", 1, 0.95f, -1, -1},
                      Mode{"greedy + 5 logprobs", 0, 1, -1, 5}}) {
      std::vector<SampleParams> p(rows);
      for (int r = 0; r < rows; ++r)
        p[r].temperature = mode.t, p[r].top_p = mode.top_p, p[r].top_k = mode.top_k, p[r].num_logprobs = mode.logprobs,
        p[r].seed = r;
      cudaMemcpy(params.as<void>(), p.data(), p.size() * sizeof(SampleParams), cudaMemcpyHostToDevice);
      bench.time("sample", "rows=" + std::to_string(rows) + " " + mode.name, bytes, 0, Peak::memory,
                 [&](cudaStream_t s) {
                   kernels::sample(logits.as<float>(), rows, vocab, params.as<SampleParams>(), nullptr,
                                   tokens.as<std::int32_t>(), lp.as<float>(), mode.logprobs > 0 ? ids.as<std::int32_t>() : nullptr,
                                   mode.logprobs > 0 ? tlp.as<float>() : nullptr, 20, s);
                 });
    }
    bench.time("apply_penalties", "rows=" + std::to_string(rows), bytes * 2 + double(rows) * vocab * 3, 0, Peak::memory,
               [&](cudaStream_t s) {
                 kernels::apply_penalties(logits.as<float>(), rows, vocab, params.as<SampleParams>(),
                                          counts.as<std::uint16_t>(), mask.as<std::uint8_t>(), s);
               });
  }
}

}  // namespace
}  // namespace troupe::kernel_bench
