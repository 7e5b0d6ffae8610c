#include "tests/support/server_process.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <regex>
#include <stdexcept>
#include <thread>

namespace troupe::testing {
namespace {

using Clock = std::chrono::steady_clock;

// fork + exec with stdout and stderr into one pipe.
int spawn(const std::vector<std::string>& args, int& out_fd) {
  int fds[2];
  if (pipe(fds) != 0) throw std::runtime_error("pipe failed");
  int pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    dup2(fds[1], 1);
    dup2(fds[1], 2);
    close(fds[0]);
    close(fds[1]);
    std::vector<char*> argv;
    std::string bin = troupe_binary();
    argv.push_back(bin.data());
    std::vector<std::string> copy = args;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(bin.c_str(), argv.data());
    _exit(127);
  }
  close(fds[1]);
  out_fd = fds[0];
  return pid;
}

// Appends what is readable within `ms`; false at EOF.
bool read_some(int fd, std::string& into, int ms) {
  pollfd p{fd, POLLIN, 0};
  if (poll(&p, 1, ms) <= 0) return true;
  char buf[4096];
  ssize_t n = read(fd, buf, sizeof buf);
  if (n <= 0) return false;
  into.append(buf, buf + n);
  return true;
}

int wait_exit(int pid, double timeout_s) {
  auto deadline = Clock::now() + std::chrono::duration<double>(timeout_s);
  while (Clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid)
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return -1;
}

}  // namespace

std::string troupe_binary() { return TROUPE_BINARY; }

ServerProcess::ServerProcess(std::vector<std::string> extra_args, double timeout_s) {
  // The sim backend unless a test names another (a later --backend wins): the default is the cpu model.
  std::vector<std::string> args{"serve", "--host", "127.0.0.1", "--port", "0", "--backend", "sim"};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  pid_ = spawn(args, out_fd_);
  std::regex ready(R"(serving .* on http://127\.0\.0\.1:(\d+))");
  auto deadline = Clock::now() + std::chrono::duration<double>(timeout_s);
  while (Clock::now() < deadline) {
    std::smatch m;
    if (std::regex_search(output_, m, ready)) {
      port_ = static_cast<std::uint16_t>(std::stoi(m[1]));
      return;
    }
    if (!read_some(out_fd_, output_, 50)) break;
  }
  stop(SIGKILL, 5);
  throw std::runtime_error("troupe serve did not become ready:\n" + output_);
}

int ServerProcess::stop(int sig, double timeout_s) {
  if (pid_ < 0) return -1;
  kill(pid_, sig);
  auto deadline = Clock::now() + std::chrono::duration<double>(timeout_s);
  int rc = -1;
  while (Clock::now() < deadline) {
    read_some(out_fd_, output_, 10);
    rc = wait_exit(pid_, 0.01);
    if (rc != -1) break;
  }
  if (rc != -1) {
    while (read_some(out_fd_, output_, 10)) {  // the last lines it wrote, up to EOF
    }
    pid_ = -1;
    close(out_fd_);
  }
  return rc;
}

ServerProcess::~ServerProcess() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    wait_exit(pid_, 5);
    close(out_fd_);
  }
}

CommandResult run_troupe(const std::vector<std::string>& args, double timeout_s) {
  CommandResult r;
  int fd = -1;
  int pid = spawn(args, fd);
  auto deadline = Clock::now() + std::chrono::duration<double>(timeout_s);
  while (Clock::now() < deadline && read_some(fd, r.output, 50)) {
  }
  r.exit_code = wait_exit(pid, std::max(0.1, std::chrono::duration<double>(deadline - Clock::now()).count()));
  if (r.exit_code == -1) {
    kill(pid, SIGKILL);
    wait_exit(pid, 5);
  }
  close(fd);
  return r;
}

}  // namespace troupe::testing
