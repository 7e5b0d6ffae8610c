#include "runtime/actor_system.hpp"

#include "runtime/interfaces.hpp"

#include <caf/io/middleman.hpp>

namespace troupe {

TroupeActorConfig::TroupeActorConfig(std::size_t threads) {
  add_message_types<caf::id_block::troupe_msgs>();
  add_message_types<caf::id_block::troupe_cluster>();
  add_message_types<caf::id_block::troupe_actors>();
  load<caf::io::middleman>();
  if (threads > 0) set("scheduler.max-threads", threads);
  // A caf-application.ini in the working directory would silently override these; we never read one.
  set("logger.verbosity", caf::atom("quiet"));
}

}  // namespace troupe
