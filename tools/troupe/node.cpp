#include "tools/troupe/node.hpp"

#include "actors/node/node_entry.hpp"
#include "runtime/logging.hpp"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <pthread.h>
#include <unistd.h>

namespace troupe {
namespace {

const char* kUsage =
  "usage: troupe node --join HOST:PORT [--join-token SECRET] [--backend sim|cpu|cuda] [--node-name NAME]\n"
  "                   [--devices N] [--log-level LEVEL]\n"
  "  Joins the head started with `troupe serve --nodes N --join-port PORT`, hosts the gpu workers the head\n"
  "  places here, and joins again whenever the head is lost. The token may come from TROUPE_JOIN_TOKEN.\n";

struct ParseError {
  std::string message;
};

std::string default_name() {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  return std::string(host) + "-" + std::to_string(getpid());
}

NodeOptions parse(const std::vector<std::string>& args, std::string& log_level) {
  NodeOptions o;
  std::string join;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= args.size()) throw ParseError{"missing value after " + a};
      return args[++i];
    };
    if (a == "--join") join = value();
    else if (a == "--join-token") o.token = value();
    else if (a == "--backend") o.backend = value();
    else if (a == "--node-name") o.name = value();
    else if (a == "--log-level") log_level = value();
    else if (a == "--devices") {
      auto v = value();
      char* end = nullptr;
      long d = std::strtol(v.c_str(), &end, 10);
      if (v.empty() || *end || d < 0 || d > 1024) throw ParseError{"--devices: expected an integer >= 0, got '" + v + "'"};
      o.devices = static_cast<std::uint32_t>(d);
    } else {
      throw ParseError{"unknown argument '" + a + "'"};
    }
  }
  auto colon = join.rfind(':');
  if (join.empty() || colon == std::string::npos || colon == 0)
    throw ParseError{"--join: expected HOST:PORT, got '" + join + "'"};
  o.host = join.substr(0, colon);
  std::string port = join.substr(colon + 1);
  char* end = nullptr;
  long p = std::strtol(port.c_str(), &end, 10);
  if (port.empty() || *end || p < 1 || p > 65535) throw ParseError{"--join: bad port '" + port + "'"};
  o.port = static_cast<std::uint16_t>(p);
  if (o.token.empty())
    if (const char* env = std::getenv("TROUPE_JOIN_TOKEN")) o.token = env;
  if (o.token.empty()) throw ParseError{"--join-token (or TROUPE_JOIN_TOKEN) is required"};
  if (o.backend != "sim" && o.backend != "cpu" && o.backend != "cuda")
    throw ParseError{"--backend: expected one of sim, cpu, cuda, got '" + o.backend + "'"};
  if (o.name.empty()) o.name = default_name();
  return o;
}

}  // namespace

int node_main(const std::vector<std::string>& args) {
  for (auto& a : args)
    if (a == "--help" || a == "-h") {
      std::printf("%s", kUsage);
      return 0;
    }
  NodeOptions opts;
  std::string log_level = "info";
  try {
    opts = parse(args, log_level);
  } catch (const ParseError& e) {
    std::fprintf(stderr, "troupe node: %s\n%s", e.message.c_str(), kUsage);
    return 2;
  }
  init_logging(log_level);
  // Blocked before any thread starts: run_node takes them synchronously.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return run_node(opts);
}

}  // namespace troupe
