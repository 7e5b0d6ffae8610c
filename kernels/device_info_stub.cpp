#include "kernels/device_info.hpp"

namespace troupe::kernels {

std::vector<DeviceInfo> list_devices(std::string* why) {
  if (why) *why = "this build has no CUDA (TROUPE_CUDA=OFF)";
  return {};
}

}  // namespace troupe::kernels
