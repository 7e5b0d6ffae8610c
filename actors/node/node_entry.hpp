#pragma once
// `troupe node --join HOST:PORT`: a worker-node process. It joins the head (retrying with backoff while
// the head is not up), hosts the gpu_workers the head places, and when the head is lost (silence, closed
// connection, a head restart) stops them and joins again. SIGINT/SIGTERM end it.
#include <cstdint>
#include <string>

namespace troupe {

struct NodeOptions {
  std::string host;              // the head's join address
  std::uint16_t port = 0;
  std::string token;
  std::string backend = "sim";
  std::string name;              // unique in the group; default hostname-pid
  std::uint32_t devices = 0;     // 0 = as many as the head places
  double connect_timeout_s = 2;  // a TCP connect to an unreachable head gives up after this long
  double max_backoff_s = 2;      // retries start at 0.1 s and double up to this
};

// Blocks until a stop signal (exit 0) or a refusal that retrying cannot fix (exit 1).
// The caller must have blocked SIGINT and SIGTERM in every thread (block_stop_signals()).
int run_node(const NodeOptions& opts);

}  // namespace troupe
