// What the memory system gives a plain streaming read, as the yardstick for the decode GEMVs (docs/BENCHMARKS.md:
// the expert GEMVs stream 132-264 MB at 52-74% of HBM, cuBLASLt's lm_head 1.85 GB at 92%). One kernel reads N bytes
// once with 16-byte non-allocating loads (the GEMVs' ld_stream16), U loads per thread issued before any is used,
// over a grid of W warps per SM that strides through the buffer; nothing else. The sizes are the decode step's
// weight reads: q_b (38 MB), o_proj (117 MB), the MoE down / gate-up GEMVs (132 / 264 MB), lm_head (1.85 GB).
#include "kernels/core/dot.cuh"
#include "kernels/core/tma.cuh"
#include "tools/kernel_bench/kernel_bench.hpp"

#include <string>

namespace troupe::kernel_bench {
namespace {

// The 16-byte load of the stream rows: 0 ld_stream16 (the GEMVs' evict-first loads), 1 ld_nc16 (no L2 policy: the
// MoE gate/up GEMV's), 2 the same with the .L2::256B prefetch-size hint (each miss fetches 256 bytes).
template <int LOAD>
__device__ __forceinline__ uint4 bench_load(const uint4* p) {
  if constexpr (LOAD == 0) return kernels::detail::ld_stream16(p);
  if constexpr (LOAD == 1) return kernels::detail::ld_nc16(p);
  uint4 v;
  asm("ld.global.nc.L1::no_allocate.L2::256B.v4.u32 {%0, %1, %2, %3}, [%4];"
      : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
      : "l"(p));
  return v;
}

template <int U, int LOAD = 0>
__global__ void __launch_bounds__(256) stream_read_kernel(const uint4* p, std::size_t n, unsigned* sink) {
  const std::size_t threads = std::size_t(gridDim.x) * blockDim.x;
  const std::size_t tid = std::size_t(blockIdx.x) * blockDim.x + threadIdx.x;
  unsigned acc = 0;
  for (std::size_t base = tid; base < n; base += threads * U) {
    uint4 v[U];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const std::size_t i = base + u * threads;
      v[u] = i < n ? bench_load<LOAD>(p + i) : make_uint4(0, 0, 0, 0);
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

// The same bytes through the copy engine: 1-D bulk copies (cp.async.bulk, no tensor map) of STAGE bytes into a ring
// of DEPTH shared-memory stages per block, which the block's warps then read (CONSUME) or only wait for. Chunk c
// of the buffer goes to block c % grid (one moving window, like stream_read_kernel). cuBLASLt's lm_head, fed by
// TMA, reads 1.85 GB at ~4.55 TB/s where the 16-byte loads above reach ~4.26. Measured (docs/BENCHMARKS.md, session
// 13): past its start this streams at ~4.6 TB/s against ~4.3, but its start costs ~4 us more, so at 38-264 MiB
// it is even or slower.
template <int STAGE, int DEPTH, bool CONSUME>
__global__ void __launch_bounds__(128) bulk_read_kernel(const unsigned char* p, std::size_t n, unsigned* sink) {
  extern __shared__ __align__(128) unsigned char ring[];
  __shared__ std::uint64_t full[DEPTH], empty[DEPTH];
  const std::size_t chunks = n / STAGE;
  const std::size_t mine = chunks > blockIdx.x ? (chunks - 1 - blockIdx.x) / gridDim.x + 1 : 0;
  if (threadIdx.x == 0) {
    for (int d = 0; d < DEPTH; ++d)  // empty: one arrival per warp
      kernels::detail::mbar_init(&full[d], 1), kernels::detail::mbar_init(&empty[d], blockDim.x / 32);
    kernels::detail::mbar_init_fence();
  }
  __syncthreads();
  auto issue = [&](std::size_t i) {
    const int s = int(i % DEPTH);
    kernels::detail::mbar_expect_tx(&full[s], STAGE);
    asm volatile(
        "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::"r"(
            kernels::detail::smem_addr(ring + s * STAGE)),
        "l"(p + (blockIdx.x + i * gridDim.x) * STAGE), "r"(STAGE), "r"(kernels::detail::smem_addr(&full[s]))
        : "memory");
  };
  if (threadIdx.x == 0)
    for (std::size_t i = 0; i < mine && i < DEPTH; ++i) issue(i);
  unsigned acc = 0;
  for (std::size_t i = 0; i < mine; ++i) {
    const int s = int(i % DEPTH);
    const unsigned parity = unsigned(i / DEPTH) & 1u;
    kernels::detail::mbar_wait(&full[s], parity);
    if constexpr (CONSUME) {
      const uint4* v = reinterpret_cast<const uint4*>(ring + s * STAGE);
      for (int k = threadIdx.x; k < STAGE / 16; k += blockDim.x) acc ^= v[k].x ^ v[k].y ^ v[k].z ^ v[k].w;
    }
    __syncwarp();
    if (threadIdx.x % 32 == 0)
      asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(kernels::detail::smem_addr(&empty[s]))
                   : "memory");
    if (threadIdx.x == 0 && i + DEPTH < mine) {
      kernels::detail::mbar_wait(&empty[s], parity);
      issue(i + DEPTH);
    }
  }
  if (acc == 0x9e3779b9u) *sink = acc;
}

template <int STAGE, int DEPTH, bool CONSUME>
void bulk_case(Bench& bench, const Buffer& buf, std::size_t bytes, int blocks_per_sm, int sms, unsigned* sink) {
  const int smem = STAGE * DEPTH;
  cudaFuncSetAttribute(bulk_read_kernel<STAGE, DEPTH, CONSUME>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
  const std::string kernel = std::string("hbm_read bulk ") + (CONSUME ? "" : "(no reads) ") +
                             std::to_string(STAGE >> 10) + " KiB x " + std::to_string(DEPTH) + ", " +
                             std::to_string(blocks_per_sm) + " blocks/SM";
  bench.time(kernel, std::to_string(bytes >> 20) + " MiB", double(bytes), 0, Peak::memory, [&](cudaStream_t s) {
    bulk_read_kernel<STAGE, DEPTH, CONSUME><<<sms * blocks_per_sm, 128, smem, s>>>(buf.as<unsigned char>(), bytes,
                                                                                   sink);
  });
}

// The small-m GEMM's weight reads alone (kernels/gemm/small_m.cu), to tell its access pattern from the rest of
// it: blocks of 64 rows x a k range of `span` bytes, 4 warps of 16 rows, 7 blocks per SM, kBatch = 4 steps of two
// 16-byte loads per thread before they are used. MODE 0: small-m's layout, lane (g, q) reading rows g and g + 8 at
// (step / 2) 128 + 32 q + 16 (step % 2): a load instruction touches 8 rows x 64 bytes, a batch 256 bytes of each of
// 16 rows. 1: the same bytes, a load instruction reading 512 contiguous bytes of one row (lane l at 16 l). 2: the
// two loads of a step read the same row (g, then g + 8 in the second half of the range): a batch reads 512
// contiguous bytes of each of 8 rows.
template <int MODE>
__global__ void __launch_bounds__(128, 7) small_m_pattern_kernel(const unsigned char* w, int n, int k, int span,
                                                                  unsigned* sink) {
  constexpr int kBatch = 4;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane >> 2, q = lane & 3;
  const int row0 = blockIdx.x * 64 + warp * 16;
  const unsigned char* base = w + std::size_t(blockIdx.y) * span;
  const int steps = span / 64;  // 64 bytes of each of the warp's 16 rows per step
  unsigned acc = 0;
  for (int s0 = 0; s0 < steps; s0 += kBatch) {
    uint4 v[2 * kBatch];
#pragma unroll
    for (int i = 0; i < kBatch; ++i) {
      const int s = s0 + i;
      if (MODE == 0) {
        const int off = (s >> 1) * 128 + q * 32 + (s & 1) * 16;
        v[2 * i] = kernels::detail::ld_stream16(base + std::size_t(row0 + g) * k + off);
        v[2 * i + 1] = kernels::detail::ld_stream16(base + std::size_t(row0 + g + 8) * k + off);
      } else if (MODE == 2) {
        const int half = steps / 2, r = g + 8 * (s / half), off = (s % half) * 128 + q * 32;
        v[2 * i] = kernels::detail::ld_stream16(base + std::size_t(row0 + r) * k + off);
        v[2 * i + 1] = kernels::detail::ld_stream16(base + std::size_t(row0 + r) * k + off + 16);
      } else {  // step s, load h: the 512 bytes [512 c, 512 c + 512) of row r, c and r numbering 2 s + h
        const int item = 2 * s;  // items of 512 bytes: span / 512 per row, 16 rows
        const int per_row = span / 512;
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const int it = item + h, r = it / per_row, c = it % per_row;
          v[2 * i + h] = kernels::detail::ld_stream16(base + std::size_t(row0 + r) * k + c * 512 + lane * 16);
        }
      }
    }
#pragma unroll
    for (int i = 0; i < 2 * kBatch; ++i) acc ^= v[i].x ^ v[i].y ^ v[i].z ^ v[i].w;
  }
  if (acc == 0x9e3779b9u && n < 0) *sink = acc;
}

__global__ void empty_kernel() {}

template <int U>
void slice_case(Bench& bench, const Buffer& buf, std::size_t bytes, int warps_per_sm, int sms, unsigned* sink) {
  const int blocks = sms * warps_per_sm / 8;
  const std::string kernel = "hbm_read per-block slices U=" + std::to_string(U) + " " +
                             std::to_string(warps_per_sm) + " warps/SM";
  bench.time(kernel, std::to_string(bytes >> 20) + " MiB", double(bytes), 0, Peak::memory, [&](cudaStream_t s) {
    slice_read_kernel<U><<<blocks, 256, 0, s>>>(buf.as<uint4>(), bytes / 16, sink);
  });
}

template <int U, int LOAD = 0>
void stream_case(Bench& bench, const Buffer& buf, std::size_t bytes, int warps_per_sm, int sms, unsigned* sink) {
  const int blocks = sms * warps_per_sm / 8;
  const char* load = LOAD == 0 ? "" : LOAD == 1 ? " (no L2 policy)" : " (L2::256B)";
  const std::string kernel =
      "hbm_read U=" + std::to_string(U) + " " + std::to_string(warps_per_sm) + " warps/SM" + load;
  bench.time(kernel, std::to_string(bytes >> 20) + " MiB", double(bytes), 0, Peak::memory, [&](cudaStream_t s) {
    stream_read_kernel<U, LOAD><<<blocks, 256, 0, s>>>(buf.as<uint4>(), bytes / 16, sink);
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
    stream_case<8, 1>(bench, buf, bytes, 32, sms, sink.as<unsigned>());
    stream_case<8, 2>(bench, buf, bytes, 32, sms, sink.as<unsigned>());
    slice_case<8>(bench, buf, bytes, 32, sms, sink.as<unsigned>());
    slice_case<8>(bench, buf, bytes, 8, sms, sink.as<unsigned>());  // one block per SM
    bulk_case<16384, 8, true>(bench, buf, bytes, 1, sms, sink.as<unsigned>());
    bulk_case<16384, 8, false>(bench, buf, bytes, 1, sms, sink.as<unsigned>());
    bulk_case<32768, 6, true>(bench, buf, bytes, 1, sms, sink.as<unsigned>());
    bulk_case<8192, 12, true>(bench, buf, bytes, 2, sms, sink.as<unsigned>());
    bulk_case<4096, 12, true>(bench, buf, bytes, 4, sms, sink.as<unsigned>());
  }
  bench.time("empty kernel (the event timing's own cost)", "-", 0, 0, Peak::memory,
             [&](cudaStream_t s) { empty_kernel<<<sms, 128, 0, s>>>(); });
}

// Whether the small-m GEMM's read pattern is what holds it below a plain stream (docs/BENCHMARKS.md, session 15).
KERNEL_BENCH(small_m_pattern) {
  int dev = 0, sms = 0;
  cudaGetDevice(&dev);
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
  const std::size_t bytes = std::size_t(7168) * 16384;
  Buffer buf(bytes), sink(4);
  fill_i32(buf.as<std::int32_t>(), bytes / 4, 0, 1 << 30, 1);
  stream_case<4>(bench, buf, bytes, 32, sms, sink.as<unsigned>());
  stream_case<8>(bench, buf, bytes, 32, sms, sink.as<unsigned>());
  // R1's o_proj as the small-m plan cuts it: 7168 rows of 16384 bytes, 112 row tiles x 8 k splits of 2048 bytes.
  const int n = 7168, k = 16384, span = 2048;
  const dim3 grid(n / 64, k / span);
  const char* what[] = {"8 rows x 64 B per load", "512 B of one row per load", "two loads of a step on one row"};
  for (int mode = 0; mode < 3; ++mode)
    bench.time(std::string("small-m read pattern, ") + what[mode], "o_proj 112 MiB", double(n) * k, 0, Peak::memory,
               [&](cudaStream_t s) {
                 auto* kernel = mode == 0   ? small_m_pattern_kernel<0>
                                : mode == 1 ? small_m_pattern_kernel<1>
                                            : small_m_pattern_kernel<2>;
                 kernel<<<grid, 128, 0, s>>>(buf.as<unsigned char>(), n, k, span, sink.as<unsigned>());
               });
}

}  // namespace
}  // namespace troupe::kernel_bench
