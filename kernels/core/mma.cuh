#pragma once
// mma.sync m16n8k16 (bf16 in, float32 accumulate), bf16 packing and cp.async, for every tensor-core kernel
// (paged attention, MLA, the MoE expert GEMMs).
// Fragment layouts (g = lane / 4, c = lane % 4; two bf16 per 32-bit register):
//   A (16x16, row-major): a0 (g, 2c..2c+1)  a1 (g+8, 2c..)  a2 (g, 2c+8..)  a3 (g+8, 2c+8..)
//   B (16x8, "col"):      b0 (k = 2c..2c+1, n = g)          b1 (k = 2c+8.., n = g)
//   C (16x8, float32):    c0,c1 (g, 2c..2c+1)               c2,c3 (g+8, 2c..2c+1)
#include <cuda_bf16.h>

#include <cstdint>

namespace troupe::kernels::detail {

__device__ __forceinline__ void mma16816(float (&c)[4], const std::uint32_t (&a)[4], std::uint32_t b0,
                                         std::uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ std::uint32_t pack_bf16(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const std::uint32_t*>(&v);
}

// Four 8x8 bf16 matrices from shared memory: lane l gives the address of row l % 8 of matrix l / 8; register i
// receives matrix i in the A / B fragment layout (row g, columns 2c, 2c + 1).
__device__ __forceinline__ void ldmatrix_x4(std::uint32_t (&r)[4], const void* smem_row) {
  const unsigned a = static_cast<unsigned>(__cvta_generic_to_shared(smem_row));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(a));
}

// Four 8x8 bf16 matrices from shared memory, transposed: lane l gives the address of row l % 8 of matrix
// l / 8 (16 contiguous bytes); register i receives matrix i's elements (rows 2c, 2c+1; column g). On V
// stored [key][d], matrices (keys k..k+7 | k+8..k+15) x (d n..n+7 | n+8..n+15) give the B fragments
// {b0, b1} of n-tile n and {b0, b1} of n-tile n + 8 for the P V product.
__device__ __forceinline__ void ldmatrix_x4_trans(std::uint32_t (&r)[4], const void* smem_row) {
  const unsigned a = static_cast<unsigned>(__cvta_generic_to_shared(smem_row));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(a));
}

__device__ __forceinline__ std::uint32_t ld32(const void* p) { return *reinterpret_cast<const std::uint32_t*>(p); }

// 16 bytes global -> shared without staging through registers; `valid` false zero-fills the 16 bytes.
__device__ __forceinline__ void cp_async16(void* smem, const void* gmem, bool valid) {
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem), "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n"); }
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

}  // namespace troupe::kernels::detail

namespace troupe::kernels::detail {

// The online-softmax state of the two query rows a thread holds in the mma layouts (row g: "a", row g + 8:
// "b"), with its share of the unnormalised output O (D / 8 n-tiles). Scores are in the exp2 domain.
template <int D>
struct SoftmaxRows {
  float o[D / 8][4];
  float m_a = -INFINITY, m_b = -INFINITY, l_a = 0, l_b = 0;

  __device__ void clear() {
#pragma unroll
    for (int j = 0; j < D / 8; ++j) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0;
  }

  // s: NT n-tiles of scaled scores, masked keys at -inf. Rescales O and l to the new running max and writes P as
  // the A operand of the P V product. A row that has seen no live key yet (its running max still -inf: MLA
  // prefill pieces hold rows whose keys lie in another piece) takes 0 as the exponent's base, so its P and
  // its correction are 0 instead of NaN.
  template <int NT>
  __device__ void update(float (&s)[NT][4], std::uint32_t (&pf)[NT / 2][4]) {
    float mx_a = m_a, mx_b = m_b;
#pragma unroll
    for (int n = 0; n < NT; ++n) mx_a = fmaxf(mx_a, fmaxf(s[n][0], s[n][1])), mx_b = fmaxf(mx_b, fmaxf(s[n][2], s[n][3]));
#pragma unroll
    for (int o2 = 1; o2 < 4; o2 <<= 1) {  // the 4 lanes of a quad hold the rest of the row
      mx_a = fmaxf(mx_a, __shfl_xor_sync(0xffffffffu, mx_a, o2));
      mx_b = fmaxf(mx_b, __shfl_xor_sync(0xffffffffu, mx_b, o2));
    }
    const float base_a = mx_a == -INFINITY ? 0.f : mx_a, base_b = mx_b == -INFINITY ? 0.f : mx_b;
    const float corr_a = exp2f(m_a - base_a), corr_b = exp2f(m_b - base_b);
    m_a = mx_a, m_b = mx_b;
    l_a *= corr_a, l_b *= corr_b;
#pragma unroll
    for (int j = 0; j < D / 8; ++j) o[j][0] *= corr_a, o[j][1] *= corr_a, o[j][2] *= corr_b, o[j][3] *= corr_b;
#pragma unroll
    for (int n = 0; n < NT; ++n) {
      const float e0 = exp2f(s[n][0] - base_a), e1 = exp2f(s[n][1] - base_a);
      const float e2 = exp2f(s[n][2] - base_b), e3 = exp2f(s[n][3] - base_b);
      l_a += e0 + e1, l_b += e2 + e3;
      pf[n / 2][(n % 2) * 2] = pack_bf16(e0, e1);
      pf[n / 2][(n % 2) * 2 + 1] = pack_bf16(e2, e3);
    }
  }

  __device__ void reduce_sums() {  // l over the quad: the full row sums
#pragma unroll
    for (int o2 = 1; o2 < 4; o2 <<= 1) {
      l_a += __shfl_xor_sync(0xffffffffu, l_a, o2);
      l_b += __shfl_xor_sync(0xffffffffu, l_b, o2);
    }
  }
};

}  // namespace troupe::kernels::detail
