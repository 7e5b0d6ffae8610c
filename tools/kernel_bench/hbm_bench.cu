// What the memory system gives a plain streaming read, as the yardstick for the decode GEMVs (docs/BENCHMARKS.md:
// the expert GEMVs stream 132-264 MB at 52-74% of HBM, cuBLASLt's lm_head 1.85 GB at 92%). One kernel reads N bytes
// once with 16-byte non-allocating loads (the GEMVs' ld_stream16), U loads per thread issued before any is used,
// over a grid of W warps per SM that strides through the buffer; nothing else. The sizes are the decode step's
// weight reads: q_b (38 MB), o_proj (117 MB), the MoE down / gate-up GEMVs (132 / 264 MB), lm_head (1.85 GB).
#include "kernels/core/dot.cuh"
#include "tools/kernel_bench/kernel_bench.hpp"

#include <string>

namespace troupe::kernel_bench {
namespace {

template <int U>
__global__ void __launch_bounds__(256) stream_read_kernel(const uint4* p, std::size_t n, unsigned* sink) {
  const std::size_t threads = std::size_t(gridDim.x) * blockDim.x;
  const std::size_t tid = std::size_t(blockIdx.x) * blockDim.x + threadIdx.x;
  unsigned acc = 0;
  for (std::size_t base = tid; base < n; base += threads * U) {
    uint4 v[U];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const std::size_t i = base + u * threads;
      v[u] = i < n ? kernels::detail::ld_stream16(p + i) : make_uint4(0, 0, 0, 0);
    }
#pragma unroll
    for (int u = 0; u < U; ++u) acc ^= v[u].x ^ v[u].y ^ v[u].z ^ v[u].w;
  }
  if (acc == 0x9e3779b9u) *sink = acc;  // keeps the loads; practically never true
}

// The same bytes, but block b reads only its own contiguous slice [b n / B, (b + 1) n / B), its threads striding
// through it: at any moment the SMs read B disjoint places instead of one moving window (the pattern of a GEMV
// that gives each SM its own rows: the MoE down GEMV's row ranges, a split-K slice).
template <int U>
__global__ void __launch_bounds__(256) slice_read_kernel(const uint4* p, std::size_t n, unsigned* sink) {
  const std::size_t lo = n * blockIdx.x / gridDim.x, hi = n * (blockIdx.x + 1) / gridDim.x;
  unsigned acc = 0;
  for (std::size_t base = lo + threadIdx.x; base < hi; base += std::size_t(blockDim.x) * U) {
    uint4 v[U];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const std::size_t i = base + std::size_t(u) * blockDim.x;
      v[u] = i < hi ? kernels::detail::ld_stream16(p + i) : make_uint4(0, 0, 0, 0);
    }
#pragma unroll
    for (int u = 0; u < U; ++u) acc ^= v[u].x ^ v[u].y ^ v[u].z ^ v[u].w;
  }
  if (acc == 0x9e3779b9u) *sink = acc;
}

template <int U>
void slice_case(Bench& bench, const Buffer& buf, std::size_t bytes, int warps_per_sm, int sms, unsigned* sink) {
  const int blocks = sms * warps_per_sm / 8;
  const std::string kernel = "hbm_read per-block slices U=" + std::to_string(U) + " " +
                             std::to_string(warps_per_sm) + " warps/SM";
  bench.time(kernel, std::to_string(bytes >> 20) + " MiB", double(bytes), 0, Peak::memory, [&](cudaStream_t s) {
    slice_read_kernel<U><<<blocks, 256, 0, s>>>(buf.as<uint4>(), bytes / 16, sink);
  });
}

template <int U>
void stream_case(Bench& bench, const Buffer& buf, std::size_t bytes, int warps_per_sm, int sms, unsigned* sink) {
  const int blocks = sms * warps_per_sm / 8;
  const std::string kernel = "hbm_read U=" + std::to_string(U) + " " + std::to_string(warps_per_sm) + " warps/SM";
  bench.time(kernel, std::to_string(bytes >> 20) + " MiB", double(bytes), 0, Peak::memory, [&](cudaStream_t s) {
    stream_read_kernel<U><<<blocks, 256, 0, s>>>(buf.as<uint4>(), bytes / 16, sink);
  });
}

KERNEL_BENCH(hbm_stream) {
  int dev = 0, sms = 0;
  cudaGetDevice(&dev);
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
  const std::size_t max_bytes = std::size_t(1850) << 20;
  Buffer buf(max_bytes), sink(4);
  fill_i32(buf.as<std::int32_t>(), max_bytes / 4, 0, 1 << 30, 1);
  for (std::size_t mb : {38, 117, 132, 264, 1850}) {
    const std::size_t bytes = mb << 20;
    stream_case<4>(bench, buf, bytes, 32, sms, sink.as<unsigned>());
    stream_case<8>(bench, buf, bytes, 32, sms, sink.as<unsigned>());
    stream_case<16>(bench, buf, bytes, 32, sms, sink.as<unsigned>());
    stream_case<8>(bench, buf, bytes, 16, sms, sink.as<unsigned>());
    stream_case<4>(bench, buf, bytes, 64, sms, sink.as<unsigned>());  // 32 registers a thread at most
    slice_case<8>(bench, buf, bytes, 32, sms, sink.as<unsigned>());
    slice_case<8>(bench, buf, bytes, 8, sms, sink.as<unsigned>());  // one block per SM
  }
}

}  // namespace
}  // namespace troupe::kernel_bench
