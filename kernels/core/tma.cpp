#include "kernels/core/tma.hpp"

#include <cuda_runtime.h>
#include <cudaTypedefs.h>

#include <stdexcept>
#include <string>

namespace troupe::kernels {

namespace {

PFN_cuTensorMapEncodeTiled_v12000 encode_tiled() {
  static const PFN_cuTensorMapEncodeTiled_v12000 fn = [] {
    void* p = nullptr;
    cudaDriverEntryPointQueryResult found{};
    const cudaError_t e =
        cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &p, 12000, cudaEnableDefault, &found);
    if (e != cudaSuccess || found != cudaDriverEntryPointSuccess || !p)
      throw std::runtime_error("tma: the driver has no cuTensorMapEncodeTiled (" + std::string(cudaGetErrorString(e)) +
                               ")");
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(p);
  }();
  return fn;
}

}  // namespace

CUtensorMap tma_map_rows_sw128(const void* base, std::uint64_t rows, std::uint64_t cols, std::uint64_t row_stride,
                               std::uint32_t box_rows) {
  CUtensorMap map{};
  const cuuint64_t dims[2] = {cols, rows};  // innermost first
  const cuuint64_t strides[1] = {row_stride};
  const cuuint32_t box[2] = {128, box_rows};
  const cuuint32_t step[2] = {1, 1};
  const CUresult r = encode_tiled()(&map, CU_TENSOR_MAP_DATA_TYPE_UINT8, 2, const_cast<void*>(base), dims, strides,
                                    box, step, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                                    CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (r != CUDA_SUCCESS)
    throw std::runtime_error("tma: cuTensorMapEncodeTiled failed (" + std::to_string(int(r)) + ") for " +
                             std::to_string(rows) + " x " + std::to_string(cols) + " bytes, box rows " +
                             std::to_string(box_rows));
  return map;
}

}  // namespace troupe::kernels
