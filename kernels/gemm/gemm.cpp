// cuBLASLt GEMMs. cuBLAS is column-major, our tensors row-major, so every call computes the transpose:
//
//   row-major C[m, n] = A[m, k] W[n, k]^T   <=>   column-major C'(n x m) = W'^T (n x k) * A' (k x m)
//
// where W' is W read column-major (k x n, ld k) and A' is A read column-major (k x m, ld k). cuBLAS's "A"
// operand is our weight (transposed: TN layout, which FP8 requires) and its "B" operand our activations.
// Descriptors and the heuristic's algorithm are built once per shape and cached; a call only sets pointers.
#include "kernels/gemm/gemm.hpp"
#include "kernels/gemm/fp8_prep.hpp"
#include "kernels/gemm/small_m.hpp"

#include <cublasLt.h>

#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <tuple>

namespace troupe::kernels {
namespace {

void lt_check(cublasStatus_t st, const char* what) {
  if (st != CUBLAS_STATUS_SUCCESS)
    throw std::runtime_error(std::string("cuBLASLt ") + what + ": status " + std::to_string(int(st)));
}
void cuda_check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string("gemm ") + what + ": " + cudaGetErrorString(e));
}

enum class Kind { bf16, bf16_batched, fp8, fp8_no_ws };  // fp8_no_ws: fp8_block_tm

// Default crossovers, from troupe_kernel_bench gemm_small_m on an H200 (docs/BENCHMARKS.md, "Small-m GEMMs"):
// FP8 small-m beats cuBLASLt (plus its staging copies) at m <= 8 on every R1 / V2-Lite shape, loses at 16;
// bf16 small-m loses to cuBLASLt's bf16 GEMV-like kernels almost everywhere, so it stays off.
constexpr int kSmallFp8 = 8, kSmallBf16 = 0;

// Everything that selects descriptors and algorithm. Strides are part of it (batched calls).
struct Key {
  Kind kind;
  int m, n, k, out, accumulate, w_transposed, batch;
  long long lda, ldw, ldc, sa, sw, sc;
  bool operator<(const Key& o) const {
    return std::tie(kind, m, n, k, out, accumulate, w_transposed, batch, lda, ldw, ldc, sa, sw, sc) <
           std::tie(o.kind, o.m, o.n, o.k, o.out, o.accumulate, o.w_transposed, o.batch, o.lda, o.ldw, o.ldc, o.sa,
                    o.sw, o.sc);
  }
};

struct Plan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
  bool has_algo = false;
  bool no_ws = false;  // Kind::fp8_no_ws: planned and run without workspace
  ~Plan() {
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (c) cublasLtMatrixLayoutDestroy(c);
    if (desc) cublasLtMatmulDescDestroy(desc);
  }
};

cublasLtMatrixLayout_t layout(cudaDataType_t t, long long rows, long long cols, long long ld, int batch = 1,
                              long long stride = 0) {
  cublasLtMatrixLayout_t l = nullptr;
  lt_check(cublasLtMatrixLayoutCreate(&l, t, rows, cols, ld), "layout");
  if (batch > 1) {
    lt_check(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &batch, sizeof(batch)), "batch");
    lt_check(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof(stride)),
             "batch stride");
  }
  return l;
}

void set_ops(cublasLtMatmulDesc_t d, cublasOperation_t ta, cublasOperation_t tb) {
  lt_check(cublasLtMatmulDescSetAttribute(d, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)), "transa");
  lt_check(cublasLtMatmulDescSetAttribute(d, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)), "transb");
}

}  // namespace

struct Gemm::Impl {
  cublasLtHandle_t handle = nullptr;
  void* workspace = nullptr;
  std::size_t workspace_bytes = 0;
  std::mutex mu;
  std::map<Key, std::unique_ptr<Plan>> plans;
  Fp8Staging staging;  // padded activations / scales for fp8_block
  small_m::Workspace small_ws;  // partials share the cuBLASLt workspace (same stream order); counters are own
  int sms = 1, small_fp8 = kSmallFp8, small_bf16 = kSmallBf16;

  // The small-m plan for this call, or !ok (then cuBLASLt runs).
  small_m::Plan small_plan(int m, int n, int k, int elem_bytes, const void* a, const void* w) const {
    if (m > (elem_bytes == 1 ? small_fp8 : small_bf16) || !small_m::aligned(a, w)) return {};
    return small_m::plan(m, n, k, elem_bytes, sms, small_ws);
  }

  Plan& plan(const Key& key) {
    auto it = plans.find(key);
    if (it != plans.end()) return *it->second;
    auto p = std::make_unique<Plan>();
    build(key, *p);
    return *plans.emplace(key, std::move(p)).first->second;
  }

  void build(const Key& key, Plan& p) {
    const bool fp8 = key.kind == Kind::fp8 || key.kind == Kind::fp8_no_ws;
    lt_check(cublasLtMatmulDescCreate(&p.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F), "desc");
    const cudaDataType_t in = fp8 ? CUDA_R_8F_E4M3 : CUDA_R_16BF;
    const cudaDataType_t out = key.out == int(OutType::f32) ? CUDA_R_32F : CUDA_R_16BF;
    if (key.w_transposed) {  // W_i stored [k, n]: column-major n x k, used as is
      set_ops(p.desc, CUBLAS_OP_N, CUBLAS_OP_N);
      p.a = layout(in, key.n, key.k, key.ldw, key.batch, key.sw);
    } else {  // W_i stored [n, k]: column-major k x n, transposed
      set_ops(p.desc, CUBLAS_OP_T, CUBLAS_OP_N);
      p.a = layout(in, key.k, key.n, key.ldw, key.batch, key.sw);
    }
    p.b = layout(in, key.k, key.m, key.lda, key.batch, key.sa);
    p.c = layout(out, key.n, key.m, key.ldc, key.batch, key.sc);
    if (fp8) {
      const std::int32_t wmode = CUBLASLT_MATMUL_MATRIX_SCALE_BLK128x128_32F, amode = CUBLASLT_MATMUL_MATRIX_SCALE_VEC128_32F;
      lt_check(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_A_SCALE_MODE, &wmode, sizeof(wmode)),
               "A scale mode");
      lt_check(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_B_SCALE_MODE, &amode, sizeof(amode)),
               "B scale mode");
      // Scale pointers must be set before the heuristic query; the real ones are set per call.
      static float dummy_scale = 1.0f;
      const void* ptr = &dummy_scale;
      lt_check(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &ptr, sizeof(ptr)), "A scale");
      lt_check(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &ptr, sizeof(ptr)), "B scale");
    }
    cublasLtMatmulPreference_t pref = nullptr;
    lt_check(cublasLtMatmulPreferenceCreate(&pref), "preference");
    p.no_ws = key.kind == Kind::fp8_no_ws;
    const std::size_t ws_bytes = p.no_ws ? 0 : workspace_bytes;
    lt_check(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws_bytes,
                                                  sizeof(ws_bytes)),
             "workspace pref");
    cublasLtMatmulHeuristicResult_t result{};
    int found = 0;
    const cublasStatus_t st =
        cublasLtMatmulAlgoGetHeuristic(handle, p.desc, p.a, p.b, p.c, p.c, pref, 1, &result, &found);
    cublasLtMatmulPreferenceDestroy(pref);
    if (st == CUBLAS_STATUS_SUCCESS && found > 0) {
      p.algo = result.algo;
      p.has_algo = true;
    }
  }

  void run(Plan& p, const void* w, const void* a, void* c, bool accumulate, cudaStream_t s, const char* what) {
    if (!p.has_algo) throw std::runtime_error(std::string("cuBLASLt found no algorithm for ") + what);
    const float alpha = 1.0f, beta = accumulate ? 1.0f : 0.0f;
    lt_check(cublasLtMatmul(handle, p.desc, &alpha, w, p.a, a, p.b, &beta, c, p.c, c, p.c, &p.algo,
                            p.no_ws ? nullptr : workspace, p.no_ws ? 0 : workspace_bytes, s),
             what);
  }
};

Gemm::Gemm(std::size_t workspace_bytes) : impl_(std::make_unique<Impl>()) {
  lt_check(cublasLtCreate(&impl_->handle), "create");
  impl_->workspace_bytes = workspace_bytes;
  if (workspace_bytes) cuda_check(cudaMalloc(&impl_->workspace, workspace_bytes), "workspace");
  int dev = 0;
  cuda_check(cudaGetDevice(&dev), "device");
  cuda_check(cudaDeviceGetAttribute(&impl_->sms, cudaDevAttrMultiProcessorCount, dev), "SM count");
  auto& ws = impl_->small_ws;
  ws.partials = static_cast<float*>(impl_->workspace);
  ws.partial_bytes = workspace_bytes;
  ws.counter_slots = 4096;  // row tiles of 64: n up to 262144
  cuda_check(cudaMalloc(&ws.counters, ws.counter_slots * sizeof(unsigned)), "small-m counters");
  cuda_check(cudaMemset(ws.counters, 0, ws.counter_slots * sizeof(unsigned)), "small-m counters");
  // TROUPE_GEMM_SMALL_M=0 turns the small-m kernels off (before/after measurements, a suspected kernel bug).
  if (const char* e = std::getenv("TROUPE_GEMM_SMALL_M")) {
    const char* comma = std::strchr(e, ',');
    set_small_m_max(std::atoi(e), std::atoi(comma ? comma + 1 : e));
  }
}

Gemm::~Gemm() {
  impl_->plans.clear();
  impl_->staging.release();
  if (impl_->small_ws.counters) cudaFree(impl_->small_ws.counters);
  if (impl_->workspace) cudaFree(impl_->workspace);
  if (impl_->handle) cublasLtDestroy(impl_->handle);
}

void Gemm::bf16(const __nv_bfloat16* a, const __nv_bfloat16* w, void* c, OutType out, int m, int n, int k,
                cudaStream_t s, bool accumulate) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) throw std::invalid_argument("Gemm::bf16: k must be positive");
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (const auto sp = impl_->small_plan(m, n, k, 2, a, w); sp.ok)
    return small_m::bf16(a, w, c, out == OutType::f32, accumulate, m, n, k, sp, impl_->small_ws, s);
  const Key key{Kind::bf16, m, n, k, int(out), accumulate, 0, 1, k, k, n, 0, 0, 0};
  impl_->run(impl_->plan(key), w, a, c, accumulate, s, "bf16 GEMM");
}

void Gemm::bf16_batched(const __nv_bfloat16* a, int lda, long long stride_a, const __nv_bfloat16* w, int ldw,
                        long long stride_w, __nv_bfloat16* c, int ldc, long long stride_c, int batch, int m, int n,
                        int k, bool w_transposed, cudaStream_t s) {
  if (m <= 0 || n <= 0 || batch <= 0) return;
  if (k <= 0) throw std::invalid_argument("Gemm::bf16_batched: k must be positive");
  std::lock_guard<std::mutex> lock(impl_->mu);
  const Key key{Kind::bf16_batched, m, n, k, int(OutType::bf16), 0, w_transposed, batch, lda, ldw, ldc,
                stride_a, stride_w, stride_c};
  impl_->run(impl_->plan(key), w, a, c, false, s, "batched bf16 GEMM");
}

void Gemm::reserve_fp8(int max_m, int max_n, int max_k) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->staging.reserve(max_m, max_n, max_k);
}

void Gemm::fp8_block(const __nv_fp8_e4m3* a, const float* a_scale, const __nv_fp8_e4m3* w, const float* w_scale,
                     __nv_bfloat16* c, int m, int n, int k, cudaStream_t s) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0 || k % 128 != 0) throw std::invalid_argument("Gemm::fp8_block: k must be a positive multiple of 128");
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (const auto sp = impl_->small_plan(m, n, k, 1, a, w); sp.ok)
    return small_m::fp8(a, a_scale, w, w_scale, c, m, n, k, sp, impl_->small_ws, s);
  // cuBLASLt wants the activation scales token-major ([k/128, m_pad]) with m_pad a multiple of 4 (and at
  // least 16: it has no algorithm for m = 1), and the weight scales' k-block dimension padded to 4.
  const Fp8Prepared prep = impl_->staging.prepare(a, a_scale, w_scale, m, n, k, s);
  const Key key{Kind::fp8, prep.m_pad, n, k, int(OutType::bf16), 0, 0, 1, k, k, n, 0, 0, 0};
  Plan& p = impl_->plan(key);
  const void* wsp = prep.w_scale;
  const void* asp = prep.a_scale;
  lt_check(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &wsp, sizeof(wsp)), "A scale");
  lt_check(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &asp, sizeof(asp)), "B scale");
  void* out = prep.m_pad == m ? static_cast<void*>(c) : prep.c;
  impl_->run(p, w, prep.a, out, false, s, "FP8 block-scaled GEMM");
  if (out != c)
    cuda_check(cudaMemcpyAsync(c, out, std::size_t(m) * n * sizeof(__nv_bfloat16), cudaMemcpyDeviceToDevice, s),
               "copy padded output");
}

void Gemm::fp8_block_tm(const __nv_fp8_e4m3* a, const float* a_scale_tm, const __nv_fp8_e4m3* w, const float* w_scale,
                        __nv_bfloat16* c, int m, int n, int k, cudaStream_t s) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0 || k % 128 != 0 || m % 4 != 0 || m < 16)
    throw std::invalid_argument("Gemm::fp8_block_tm: needs k % 128 == 0, m % 4 == 0 and m >= 16");
  std::lock_guard<std::mutex> lock(impl_->mu);
  const Key key{Kind::fp8_no_ws, m, n, k, int(OutType::bf16), 0, 0, 1, k, k, n, 0, 0, 0};
  Plan& p = impl_->plan(key);
  lt_check(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &w_scale, sizeof(w_scale)),
           "A scale");
  lt_check(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &a_scale_tm,
                                          sizeof(a_scale_tm)),
           "B scale");
  impl_->run(p, w, a, c, false, s, "FP8 block-scaled GEMM");
}

void Gemm::set_small_m_max(int fp8_max, int bf16_max) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->small_fp8 = std::clamp(fp8_max, 0, small_m::kMaxM);
  impl_->small_bf16 = std::clamp(bf16_max, 0, small_m::kMaxM);
}

}  // namespace troupe::kernels
