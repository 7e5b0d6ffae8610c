#include "kernels/core/timeline.hpp"

#include <mutex>
#include <vector>

namespace troupe::kernels {
namespace {

struct Registry {
  std::mutex mu;
  std::vector<detail::TimelineSetter> setters;
};

Registry& registry() {  // built on first use: units register from their static initializers
  static Registry r;
  return r;
}

}  // namespace

bool detail::timeline_register(TimelineSetter set) {
  Registry& r = registry();
  std::lock_guard lock(r.mu);
  r.setters.push_back(set);
  return true;
}

void timeline_attach(const TimelineBuffer& buf) {
  Registry& r = registry();
  std::lock_guard lock(r.mu);
  for (auto set : r.setters) set(buf);
}

}  // namespace troupe::kernels
