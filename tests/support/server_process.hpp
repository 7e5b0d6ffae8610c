#pragma once
// A `troupe serve` child process for tests against the real binary: started on a free loopback port,
// ready when it prints its "serving ... on http://HOST:PORT" line, stopped with SIGTERM.
#include <cstdint>
#include <string>
#include <vector>

namespace troupe::testing {

class ServerProcess {
 public:
  // Throws std::runtime_error (with the child's output) if it exits or is not ready within timeout_s.
  explicit ServerProcess(std::vector<std::string> extra_args, double timeout_s = 60);
  ~ServerProcess();  // SIGKILL if still running
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  std::uint16_t port() const { return port_; }
  // Sends `sig` and waits; returns the exit status (128+signal if killed), or -1 on timeout.
  int stop(int sig, double timeout_s);
  std::string output() const { return output_; }

 private:
  int pid_ = -1;
  int out_fd_ = -1;
  std::uint16_t port_ = 0;
  std::string output_;
};

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};
// Runs the troupe binary to completion (bounded by timeout_s).
CommandResult run_troupe(const std::vector<std::string>& args, double timeout_s = 60);

// The troupe binary the build made (TROUPE_BINARY at compile time).
std::string troupe_binary();

}  // namespace troupe::testing
