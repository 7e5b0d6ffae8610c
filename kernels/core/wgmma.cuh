#pragma once
// Hopper warpgroup MMA (wgmma, sm_90a) for bf16 operands with float32 accumulators, and the shared-memory
// descriptors of K-major tiles in the 128-byte swizzle. A warpgroup is 4 consecutive warps starting at a warp
// index divisible by 4; all 128 threads issue each instruction.
//
// Accumulator and register-A layouts match mma.sync's m16n8 ones warp by warp (mma.cuh): warp w of the group
// holds rows 16w .. 16w + 15; d[j][0..3] = (row g, col 8j + 2c, +1), (row g + 8, same cols), g = lane / 4,
// c = lane % 4; an A fragment of a k16 slice is mma16816's {a0, a1, a2, a3}.
//
// K-major, 128-byte swizzle: a tile of R rows (R % 8 == 0) by 64 bf16 is one "atom" of R x 128 bytes, 1024-byte
// aligned; the 16-byte chunk c of row r sits at r * 128 + ((c ^ (r % 8)) * 16). Wider rows are several atoms one
// after the other. A k16 step inside an atom starts 32 bytes further; 8-row groups are 1024 bytes apart (SBO).
//
//   atom (R x 64 bf16):  row r: | chunk 0^r%8 | chunk 1^r%8 | ... | chunk 7^r%8 |   (16 B each)
#include <cstdint>

namespace troupe::kernels::detail {

// Byte offset of the 16-byte chunk ch < 8 of row r of a K-major 128-byte-swizzled atom.
__device__ __forceinline__ std::uint32_t sw128_chunk(int r, int ch) {
  return std::uint32_t(r) * 128u + (std::uint32_t(ch ^ (r & 7)) << 4);
}
// Byte offset of bf16 element (row r, column k < 64) of such an atom.
__device__ __forceinline__ std::uint32_t sw128_offset(int r, int k) { return sw128_chunk(r, k >> 3) + (k & 7) * 2u; }

// The descriptor of a K-major 128-byte-swizzled operand whose first row (of a k16 step) is at `smem`.
__device__ __forceinline__ std::uint64_t sw128_desc(const void* smem) {
  const std::uint32_t addr = static_cast<std::uint32_t>(__cvta_generic_to_shared(smem));
  std::uint64_t d = (addr & 0x3FFFFu) >> 4;      // start address, 16-byte units
  d |= std::uint64_t(1) << 16;                     // leading byte offset (unused by swizzled K-major)
  d |= std::uint64_t(1024 >> 4) << 32;             // stride byte offset: 8 rows x 128 bytes
  d |= std::uint64_t(1) << 62;                     // 128-byte swizzle
  return d;
}

__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
// The accumulators are written asynchronously: after wgmma_wait, pin them so that the compiler moves no read of
// them above the wait (the asm statements tie the registers to the issue point only).
template <int N>
__device__ __forceinline__ void wgmma_fence_operands(float (&d)[N][4]) {
#pragma unroll
  for (int j = 0; j < N; ++j)
#pragma unroll
    for (int i = 0; i < 4; ++i) asm volatile("" : "+f"(d[j][i])::"memory");
}

// Generic-proxy writes (st.shared, cp.async) that the tensor cores read next: each writer, before the barrier.
__device__ __forceinline__ void fence_proxy_async() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }

// D[64 x 64] (+)= A[64 x 16] B[64 x 16]^T, A and B K-major in shared memory. scale_d 0: D = A B^T.
__device__ __forceinline__ void wgmma_m64n64k16_ss(float (&d)[8][4], std::uint64_t da, std::uint64_t db, int scale_d) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, %32, %33, p, 1, 1, 0, 0;\n}\n"
      : "+f"(d[0][0]), "+f"(d[0][1]), "+f"(d[0][2]), "+f"(d[0][3]),
      "+f"(d[1][0]), "+f"(d[1][1]), "+f"(d[1][2]), "+f"(d[1][3]),
      "+f"(d[2][0]), "+f"(d[2][1]), "+f"(d[2][2]), "+f"(d[2][3]),
      "+f"(d[3][0]), "+f"(d[3][1]), "+f"(d[3][2]), "+f"(d[3][3]),
      "+f"(d[4][0]), "+f"(d[4][1]), "+f"(d[4][2]), "+f"(d[4][3]),
      "+f"(d[5][0]), "+f"(d[5][1]), "+f"(d[5][2]), "+f"(d[5][3]),
      "+f"(d[6][0]), "+f"(d[6][1]), "+f"(d[6][2]), "+f"(d[6][3]),
      "+f"(d[7][0]), "+f"(d[7][1]), "+f"(d[7][2]), "+f"(d[7][3])
      : "l"(da), "l"(db), "r"(scale_d)
      : "memory");
}

// The 64 output operands of a 64 x 128 float32 accumulator (16 n-tiles x 4 per thread), for the asm below.
#define TROUPE_WGMMA_D16X4(d) \
  "+f"(d[0][0]), "+f"(d[0][1]), "+f"(d[0][2]), "+f"(d[0][3]), "+f"(d[1][0]), "+f"(d[1][1]), "+f"(d[1][2]),      \
      "+f"(d[1][3]), "+f"(d[2][0]), "+f"(d[2][1]), "+f"(d[2][2]), "+f"(d[2][3]), "+f"(d[3][0]),                 \
      "+f"(d[3][1]), "+f"(d[3][2]), "+f"(d[3][3]), "+f"(d[4][0]), "+f"(d[4][1]), "+f"(d[4][2]),                 \
      "+f"(d[4][3]), "+f"(d[5][0]), "+f"(d[5][1]), "+f"(d[5][2]), "+f"(d[5][3]), "+f"(d[6][0]),                 \
      "+f"(d[6][1]), "+f"(d[6][2]), "+f"(d[6][3]), "+f"(d[7][0]), "+f"(d[7][1]), "+f"(d[7][2]),                 \
      "+f"(d[7][3]), "+f"(d[8][0]), "+f"(d[8][1]), "+f"(d[8][2]), "+f"(d[8][3]), "+f"(d[9][0]),                 \
      "+f"(d[9][1]), "+f"(d[9][2]), "+f"(d[9][3]), "+f"(d[10][0]), "+f"(d[10][1]), "+f"(d[10][2]),              \
      "+f"(d[10][3]), "+f"(d[11][0]), "+f"(d[11][1]), "+f"(d[11][2]), "+f"(d[11][3]), "+f"(d[12][0]),           \
      "+f"(d[12][1]), "+f"(d[12][2]), "+f"(d[12][3]), "+f"(d[13][0]), "+f"(d[13][1]), "+f"(d[13][2]),           \
      "+f"(d[13][3]), "+f"(d[14][0]), "+f"(d[14][1]), "+f"(d[14][2]), "+f"(d[14][3]), "+f"(d[15][0]),           \
      "+f"(d[15][1]), "+f"(d[15][2]), "+f"(d[15][3])

// D[64 x 128] += A[64 x 16] B[128 x 16]^T, A in registers (one k16 fragment per thread), B K-major in shared memory.
__device__ __forceinline__ void wgmma_m64n128k16_rs(float (&d)[16][4], const std::uint32_t (&a)[4], std::uint64_t db) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, {%64, %65, %66, %67}, %68, p, 1, 1, 0;\n}\n"
      : TROUPE_WGMMA_D16X4(d)
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(1)
      : "memory");
}

// FP8: D[64 x 128] (+)= A[64 x 32] B[128 x 32]^T, e4m3 both, K-major in shared memory (the only FP8 layout).
__device__ __forceinline__ void wgmma_m64n128k32_e4m3_ss(float (&d)[16][4], std::uint64_t da, std::uint64_t db,
                                                         int scale_d) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k32.f32.e4m3.e4m3 "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, %64, %65, p, 1, 1;\n}\n"
      : TROUPE_WGMMA_D16X4(d)
      : "l"(da), "l"(db), "r"(scale_d)
      : "memory");
}

}  // namespace troupe::kernels::detail
