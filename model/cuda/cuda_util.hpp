#pragma once
// Small RAII owners for device and pinned host memory, and the error check every CUDA call goes through.
// A failed call throws std::runtime_error naming the call and the place, so a bad configuration (out of
// memory, no device) ends the worker's init with a message instead of a crash.
#include <cuda_runtime.h>

#include <cstddef>
#include <stdexcept>
#include <string>
#include <utility>

namespace troupe::cuda {

inline void check(cudaError_t e, const char* what, const char* file, int line) {
  if (e != cudaSuccess)
    throw std::runtime_error(std::string("CUDA error in ") + what + " (" + file + ":" + std::to_string(line) +
                             "): " + cudaGetErrorString(e));
}
#define TROUPE_CUDA_CHECK(call) ::troupe::cuda::check((call), #call, __FILE__, __LINE__)

// Untyped device allocation (cudaMalloc; never managed memory).
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(std::size_t bytes) : bytes_(bytes) {
    if (bytes) TROUPE_CUDA_CHECK(cudaMalloc(&ptr_, bytes));
  }
  ~DeviceBuffer() { reset(); }
  DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(std::exchange(o.ptr_, nullptr)), bytes_(std::exchange(o.bytes_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
      reset();
      ptr_ = std::exchange(o.ptr_, nullptr);
      bytes_ = std::exchange(o.bytes_, 0);
    }
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  void reset() {
    if (ptr_) cudaFree(ptr_);
    ptr_ = nullptr;
    bytes_ = 0;
  }
  template <class T = void>
  T* get() const { return static_cast<T*>(ptr_); }
  std::size_t bytes() const { return bytes_; }
  explicit operator bool() const { return ptr_ != nullptr; }

 private:
  void* ptr_ = nullptr;
  std::size_t bytes_ = 0;
};

// Page-locked host memory: the staging buffers of weight uploads and of each step's inputs and outputs.
class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  explicit PinnedBuffer(std::size_t bytes) : bytes_(bytes) {
    if (bytes) TROUPE_CUDA_CHECK(cudaMallocHost(&ptr_, bytes));
  }
  ~PinnedBuffer() {
    if (ptr_) cudaFreeHost(ptr_);
  }
  PinnedBuffer(PinnedBuffer&& o) noexcept : ptr_(std::exchange(o.ptr_, nullptr)), bytes_(std::exchange(o.bytes_, 0)) {}
  PinnedBuffer& operator=(PinnedBuffer&& o) noexcept {
    std::swap(ptr_, o.ptr_);
    std::swap(bytes_, o.bytes_);
    return *this;
  }
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;
  template <class T = void>
  T* get() const { return static_cast<T*>(ptr_); }
  std::size_t bytes() const { return bytes_; }

 private:
  void* ptr_ = nullptr;
  std::size_t bytes_ = 0;
};

// Bump allocation inside one DeviceBuffer: the activation arena of a model is sized once from
// max-num-batched-tokens, so its peak is known before the KV cache takes the rest of the memory.
class Arena {
 public:
  Arena() = default;
  explicit Arena(std::size_t bytes) : buf_(bytes) {}
  template <class T>
  T* take(std::size_t count) {
    std::size_t off = (used_ + 255) & ~std::size_t(255);
    if (off + count * sizeof(T) > buf_.bytes())
      throw std::runtime_error("activation arena too small: " + std::to_string(off + count * sizeof(T)) + " > " +
                               std::to_string(buf_.bytes()) + " bytes");
    used_ = off + count * sizeof(T);
    return reinterpret_cast<T*>(buf_.get<char>() + off);
  }
  std::size_t used() const { return used_; }

 private:
  DeviceBuffer buf_;
  std::size_t used_ = 0;
};

// Counts what a layout of take<T>() calls needs, so the Arena can be allocated at exactly that size.
class ArenaPlan {
 public:
  template <class T>
  void take(std::size_t count) {
    used_ = ((used_ + 255) & ~std::size_t(255)) + count * sizeof(T);
  }
  std::size_t bytes() const { return used_ + 256; }

 private:
  std::size_t used_ = 0;
};

}  // namespace troupe::cuda
