#pragma once
// A child process for the multi-node tests: any argv (a `troupe serve`, a `troupe node`, or either under
// `ip netns exec`), its stdout and stderr collected by a thread (a chatty child never blocks on a full
// pipe), lines awaited by regex, signals sent by pid. The destructor SIGKILLs what is still running.
#include <chrono>
#include <mutex>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

namespace troupe::testing {

class Child {
 public:
  explicit Child(std::vector<std::string> argv, std::vector<std::string> env = {});
  ~Child();
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  // The groups of the first match of `re` in the output (searched from offset `from`), waiting up to
  // timeout_s; nullopt if the child exits or the time passes first.
  std::optional<std::vector<std::string>> wait_for(const std::regex& re, double timeout_s, std::size_t from = 0);
  bool saw(const std::string& text) const;
  std::string output() const;
  std::size_t output_size() const;

  void signal(int sig);
  // The exit status (128 + signal when killed) once it exits within timeout_s, else -1.
  int wait(double timeout_s);
  bool running();
  int pid() const { return pid_; }

 private:
  int pid_ = -1;
  int fd_ = -1;
  int status_ = -1;
  mutable std::mutex mu_;
  std::string out_;
  std::thread reader_;
};

// The troupe binary the build made.
std::string troupe_binary();
// A TCP port that was free a moment ago (bind to port 0, read it, close).
std::uint16_t free_port();

}  // namespace troupe::testing
