// What one dependency between two steps of a decode layer costs, by itself: the question behind a persistent
// ("mega") decode kernel. A layer at batch 1 is a chain of 14 kernels, half of them latency-bound (docs/
// BENCHMARKS.md, session 12's timeline); each hand-over from a kernel to the next is paid once per kernel. Here a
// chain of kStages dependent steps, each doing no work but reading what the step before wrote (one value per
// block, so the dependency is real), runs as
//   - kStages kernels in a CUDA graph, launched plainly or as programmatic dependent launches (the decode path's
//     way: pdl.cuh), at one block per SM and at 8; and with blocks as heavy as mla_qb_absorb's or mla_fast's
//     (512 threads, 132 or 187 KiB of shared memory), at every step or every other one;
//   - one kernel of one block per SM whose steps are separated by a grid barrier (an atomic arrival count and a
//     spin on it: the hand-over a persistent kernel would pay instead);
//   - the same with one block producing each step and the others waiting on its flag (a small step run by one
//     block, as the norms and the routing are), the producer moving from SM to SM.
// The time per step is the row's time / kStages.
#include "kernels/core/launch.hpp"
#include "kernels/core/pdl.cuh"
#include "tools/kernel_bench/kernel_bench.hpp"

#include <stdexcept>
#include <string>

namespace troupe::kernel_bench {
namespace {

constexpr int kStages = 100;

__device__ __forceinline__ unsigned ld_acquire(const unsigned* p) {
  unsigned v;
  asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
  return v;
}

// Step s of the kernel chain: block b reads what block (b + 1) % grid of the step before wrote (buf[s - 1]) and
// writes its own value of step s.
__global__ void __launch_bounds__(1024) chain_step_kernel(unsigned* buf, int stage) {
  kernels::detail::pdl_wait();
  kernels::detail::pdl_trigger();
  if (threadIdx.x != 0) return;
  const unsigned* prev = buf + std::size_t(stage - 1) * gridDim.x;
  const unsigned v = stage ? __ldcg(prev + (blockIdx.x + 1) % gridDim.x) : 0u;
  buf[std::size_t(stage) * gridDim.x + blockIdx.x] = v + 1;
}

// All steps in one kernel (grid = one block per SM, all resident): a grid barrier after each step. ONE_PRODUCER:
// step s is block s % grid's, which waits for step s - 1's flag and raises its own; every block waits for each
// flag (release / acquire through the flag itself), as all blocks would wait for a norm one block computes.
template <bool ONE_PRODUCER>
__global__ void __launch_bounds__(256) persistent_chain_kernel(unsigned* buf, unsigned* arrivals) {
  for (int s = 0; s < kStages; ++s) {
    if (threadIdx.x == 0) {
      if (ONE_PRODUCER) {
        if (blockIdx.x == unsigned(s) % gridDim.x) {  // this step's producer: after the last one's flag
          while (s && ld_acquire(buf + s - 1) != unsigned(s)) {
          }
          asm volatile("st.release.gpu.global.u32 [%0], %1;" ::"l"(buf + s), "r"(unsigned(s + 1)) : "memory");
        }
        while (ld_acquire(buf + s) != unsigned(s + 1)) {
        }
      } else {
        const unsigned* prev = buf + std::size_t(s - 1) * gridDim.x;
        const unsigned v = s ? __ldcg(prev + (blockIdx.x + 1) % gridDim.x) : 0u;
        buf[std::size_t(s) * gridDim.x + blockIdx.x] = v + 1;
        __threadfence();
        atomicAdd(arrivals, 1u);
        const unsigned target = unsigned(s + 1) * gridDim.x;
        while (ld_acquire(arrivals) < target) {
        }
      }
    }
    __syncthreads();
  }
}

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(e));
}

// kStages chain_step_kernel launches captured once; the timed launch replays the graph.
class ChainGraph {
 public:
  // Step i runs `threads` threads with `smem` bytes of dynamic shared memory, or (alternate) every other step
  // does: what a block's footprint and a change of it between kernels add to the hand-over.
  ChainGraph(cudaStream_t s, unsigned* buf, int blocks, bool pdl, int threads = 256, int smem = 0,
             bool alternate = false) {
    check(cudaFuncSetAttribute(chain_step_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, 200 << 10), "smem");
    check(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), "begin capture");
    for (int i = 0; i < kStages; ++i) {
      const bool big = !alternate || i % 2 == 1;
      const int t = big ? threads : 256, m = big ? smem : 0;
      if (pdl)
        kernels::launch_pdl(chain_step_kernel, dim3(blocks), dim3(t), m, s, "chain step", buf, i);
      else
        chain_step_kernel<<<blocks, t, m, s>>>(buf, i);
    }
    cudaGraph_t g;
    check(cudaStreamEndCapture(s, &g), "end capture");
    check(cudaGraphInstantiate(&exec_, g, 0), "instantiate");
    cudaGraphDestroy(g);
  }
  ~ChainGraph() { cudaGraphExecDestroy(exec_); }
  void launch(cudaStream_t s) const { check(cudaGraphLaunch(exec_, s), "graph launch"); }

 private:
  cudaGraphExec_t exec_ = nullptr;
};

KERNEL_BENCH(handover) {
  int dev = 0, sms = 0;
  cudaGetDevice(&dev);
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
  Buffer buf(std::size_t(kStages) * sms * 8 * sizeof(unsigned)), arrivals(sizeof(unsigned));
  const std::string shape = std::to_string(kStages) + " steps";
  for (const bool pdl : {false, true})
    for (const int per_sm : {1, 8}) {
      const ChainGraph graph(bench.stream(), buf.as<unsigned>(), sms * per_sm, pdl);
      bench.time(std::string(pdl ? "kernel chain, PDL" : "kernel chain, plain") + ", graph, " +
                     std::to_string(per_sm) + " block(s)/SM",
                 shape, 0, 0, Peak::memory, [&](cudaStream_t s) { graph.launch(s); });
    }
  for (const int smem_kb : {132, 187})
    for (const bool alternate : {false, true}) {
      const ChainGraph graph(bench.stream(), buf.as<unsigned>(), sms - 4, true, 512, smem_kb << 10, alternate);
      bench.time("kernel chain, PDL, graph, 1 block/SM of 512 threads and " + std::to_string(smem_kb) +
                     " KiB shared" + (alternate ? ", every other step (the others 256 threads, none)" : ""),
                 shape, 0, 0, Peak::memory, [&](cudaStream_t s) { graph.launch(s); });
    }
  bench.time("one kernel, grid barrier per step, 1 block/SM", shape, 0, 0, Peak::memory, [&](cudaStream_t s) {
    check(cudaMemsetAsync(arrivals.as<unsigned>(), 0, sizeof(unsigned), s), "memset");
    persistent_chain_kernel<false><<<sms, 256, 0, s>>>(buf.as<unsigned>(), arrivals.as<unsigned>());
  });
  bench.time("one kernel, one block's flag per step, 1 block/SM", shape, 0, 0, Peak::memory, [&](cudaStream_t s) {
    check(cudaMemsetAsync(buf.as<unsigned>(), 0, kStages * sizeof(unsigned), s), "memset");
    persistent_chain_kernel<true><<<sms, 256, 0, s>>>(buf.as<unsigned>(), arrivals.as<unsigned>());
  });
}

}  // namespace
}  // namespace troupe::kernel_bench
