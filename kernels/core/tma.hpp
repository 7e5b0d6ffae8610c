#pragma once
// Tensor maps for Hopper's bulk tensor copy engine (TMA): the host side. A map describes a row-major byte matrix
// in global memory and the box one copy moves; kernels take it by value as a __grid_constant__ parameter and copy
// with tma.cuh. Encoded through the driver's cuTensorMapEncodeTiled, found at run time (no libcuda link).
#include <cuda.h>

#include <cstdint>

namespace troupe::kernels {

// rows x cols bytes, rows row_stride bytes apart (a multiple of 16; base 16-byte aligned); boxes of box_rows rows
// by 128 bytes, written to shared memory in the 128-byte swizzle (wgmma.cuh's sw128 layout). Rows past the end
// read as zeros. Throws std::runtime_error when the driver refuses the map.
CUtensorMap tma_map_rows_sw128(const void* base, std::uint64_t rows, std::uint64_t cols, std::uint64_t row_stride,
                               std::uint32_t box_rows);

}  // namespace troupe::kernels
