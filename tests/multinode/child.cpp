#include "tests/multinode/child.hpp"

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <stdexcept>

namespace troupe::testing {

using Clock = std::chrono::steady_clock;

std::string troupe_binary() { return TROUPE_BINARY; }

std::uint16_t free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_ANY);
  socklen_t len = sizeof a;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    close(fd);
    throw std::runtime_error("no free port");
  }
  close(fd);
  return ntohs(a.sin_port);
}

Child::Child(std::vector<std::string> argv, std::vector<std::string> env) {
  int fds[2];
  if (pipe(fds) != 0) throw std::runtime_error("pipe failed");
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    dup2(fds[1], 1);
    dup2(fds[1], 2);
    close(fds[0]);
    close(fds[1]);
    for (auto& e : env) putenv(e.data());
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  close(fds[1]);
  fd_ = fds[0];
  reader_ = std::thread([this] {
    char buf[4096];
    while (true) {
      ssize_t n = read(fd_, buf, sizeof buf);
      if (n <= 0) break;
      std::lock_guard lk(mu_);
      out_.append(buf, buf + n);
    }
  });
}

Child::~Child() {
  if (running()) {
    kill(pid_, SIGKILL);
    wait(10);
  }
  if (reader_.joinable()) reader_.join();  // EOF once the child (and anything it spawned) is gone
  close(fd_);
}

std::optional<std::vector<std::string>> Child::wait_for(const std::regex& re, double timeout_s, std::size_t from) {
  auto deadline = Clock::now() + std::chrono::duration<double>(timeout_s);
  auto search = [&]() -> std::optional<std::vector<std::string>> {
    std::string text = output();
    if (from >= text.size()) return std::nullopt;
    text = text.substr(from);
    std::smatch m;
    if (!std::regex_search(text, m, re)) return std::nullopt;
    std::vector<std::string> groups;
    for (auto& g : m) groups.push_back(g.str());
    return groups;
  };
  while (true) {
    if (auto g = search()) return g;
    if (Clock::now() >= deadline || !running()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the line may have come with the exit
      return search();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

bool Child::saw(const std::string& text) const { return output().find(text) != std::string::npos; }

std::string Child::output() const {
  std::lock_guard lk(mu_);
  return out_;
}

std::size_t Child::output_size() const {
  std::lock_guard lk(mu_);
  return out_.size();
}

void Child::signal(int sig) {
  if (status_ == -1) kill(pid_, sig);
}

int Child::wait(double timeout_s) {
  auto deadline = Clock::now() + std::chrono::duration<double>(timeout_s);
  while (status_ == -1) {
    int st = 0;
    if (waitpid(pid_, &st, WNOHANG) == pid_) {
      status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      break;
    }
    if (Clock::now() >= deadline) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return status_;
}

bool Child::running() { return wait(0) == -1; }

}  // namespace troupe::testing
