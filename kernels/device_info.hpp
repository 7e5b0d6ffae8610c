#pragma once
// What the host can learn about its GPUs, without any CUDA header in the caller.
#include <string>
#include <vector>

namespace troupe::kernels {

struct DeviceInfo {
  int index = 0;
  std::string name;
  std::size_t total_bytes = 0;
  int sm_major = 0, sm_minor = 0;
};

// Empty when the build has no CUDA or the machine has no usable GPU (the reason goes to `why`).
std::vector<DeviceInfo> list_devices(std::string* why = nullptr);

}  // namespace troupe::kernels
