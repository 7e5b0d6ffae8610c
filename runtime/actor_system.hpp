#pragma once
// CAF setup shared by the server, the worker-node entry and the tests.
#include <caf/actor_system_config.hpp>

namespace troupe {

class TroupeActorConfig : public caf::actor_system_config {
 public:
  // threads: CAF's scheduler workers (0 = CAF's default, one per core).
  explicit TroupeActorConfig(std::size_t threads = 0);
};

}  // namespace troupe
