#include "model/cuda/shared_experts.hpp"

#include <cstdint>

namespace troupe::cuda {
namespace {

constexpr std::int64_t kBlock = 128;

// Bytes of one expert's pieces: weights (elements x element size) and, for FP8, scale floats.
struct ExpertSizes {
  std::size_t esz, n13, n2, s1;  // s1: scale floats of gate (= of up = of down)
};
ExpertSizes sizes(const kernels::MoeWeights& m) {
  const std::int64_t H = m.hidden, I = m.inter;
  return {m.fp8 ? 1u : 2u, std::size_t(2 * I * H), std::size_t(H * I),
          m.fp8 ? std::size_t(I / kBlock) * std::size_t(H / kBlock) : 0};
}

void copy(void* dst, const void* src, std::size_t bytes, cudaStream_t s) {
  TROUPE_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, s));
}
// Column block j of `rows` rows: dst [rows, width] <- src [rows, count * width] columns [j * width, +width).
void copy_cols(void* dst, const void* src, std::size_t width, int count, int j, std::size_t rows, cudaStream_t s) {
  TROUPE_CUDA_CHECK(cudaMemcpy2DAsync(dst, width, static_cast<const char*>(src) + std::size_t(j) * width,
                                      width * std::size_t(count), width, rows, cudaMemcpyDeviceToDevice, s));
}

}  // namespace

void pack_shared_experts(WeightLoader& w, const std::string& p, const kernels::MoeWeights& m, int first, int count,
                         cudaStream_t s) {
  const ExpertSizes z = sizes(m);
  const std::int64_t H = m.hidden, I = m.inter, SI = I * count;
  const std::size_t part = std::size_t(I * H) * z.esz;  // one pseudo-expert's gate (or up, or down) bytes
  DeviceBuffer gate(part * count), up(part * count), down(part * count);
  DeviceBuffer gs, us, ds;
  if (m.fp8) {
    gs = DeviceBuffer(z.s1 * count * 4), us = DeviceBuffer(z.s1 * count * 4), ds = DeviceBuffer(z.s1 * count * 4);
    w.fp8_into(p + "gate_proj.weight", SI, H, gate.get<fp8>(), gs.get<float>());
    w.fp8_into(p + "up_proj.weight", SI, H, up.get<fp8>(), us.get<float>());
    w.fp8_into(p + "down_proj.weight", H, SI, down.get<fp8>(), ds.get<float>());
  } else {
    w.bf16_into(p + "gate_proj.weight", {SI, H}, gate.get<bf16>());
    w.bf16_into(p + "up_proj.weight", {SI, H}, up.get<bf16>());
    w.bf16_into(p + "down_proj.weight", {H, SI}, down.get<bf16>());
  }
  auto* w13 = static_cast<char*>(const_cast<void*>(m.w13));
  auto* w2 = static_cast<char*>(const_cast<void*>(m.w2));
  for (int j = 0; j < count; ++j) {
    const std::size_t e = std::size_t(first + j);
    char* dst13 = w13 + e * z.n13 * z.esz;
    copy(dst13, gate.get<char>() + j * part, part, s);
    copy(dst13 + part, up.get<char>() + j * part, part, s);
    copy_cols(w2 + e * z.n2 * z.esz, down.get(), std::size_t(I) * z.esz, count, j, std::size_t(H), s);
    if (!m.fp8) continue;
    float* s13 = const_cast<float*>(m.w13_scale) + e * 2 * z.s1;
    copy(s13, gs.get<float>() + j * z.s1, z.s1 * 4, s);
    copy(s13 + z.s1, us.get<float>() + j * z.s1, z.s1 * 4, s);
    copy_cols(const_cast<float*>(m.w2_scale) + e * z.s1, ds.get(), std::size_t(I / kBlock) * 4, count, j,
              std::size_t(H / kBlock), s);
  }
  TROUPE_CUDA_CHECK(cudaStreamSynchronize(s));  // the staging buffers are freed on return
}

Linear expert_gate_up(const kernels::MoeWeights& m, int e) {
  const ExpertSizes z = sizes(m);
  Linear l;
  l.n = 2 * m.inter;
  l.k = m.hidden;
  if (m.fp8) {
    l.w8 = static_cast<const fp8*>(m.w13) + std::size_t(e) * z.n13;
    l.scale = m.w13_scale + std::size_t(e) * 2 * z.s1;
  } else {
    l.w = static_cast<const bf16*>(m.w13) + std::size_t(e) * z.n13;
  }
  return l;
}

Linear expert_down(const kernels::MoeWeights& m, int e) {
  const ExpertSizes z = sizes(m);
  Linear l;
  l.n = m.hidden;
  l.k = m.inter;
  if (m.fp8) {
    l.w8 = static_cast<const fp8*>(m.w2) + std::size_t(e) * z.n2;
    l.scale = m.w2_scale + std::size_t(e) * z.s1;
  } else {
    l.w = static_cast<const bf16*>(m.w2) + std::size_t(e) * z.n2;
  }
  return l;
}

}  // namespace troupe::cuda
