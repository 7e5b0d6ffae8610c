// `troupe`: one binary for every role. `troupe serve [CONFIG.yaml] [--key value ...]` starts a node.
#include "tools/bench/bench.hpp"
#include "tools/chat/chat.hpp"
#include "tools/troupe/node.hpp"
#include "tools/troupe/serve.hpp"

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace {

void usage(std::FILE* to) {
  std::fprintf(to,
               "usage: troupe <command> [args]\n"
               "  serve [CONFIG.yaml] [--key value ...]   start the server (keys as vLLM's flags; see serve --help)\n"
               "  node --join HOST:PORT [--join-token SECRET] [--backend B]   join a head as a worker node\n"
               "  bench [--key value ...]                 benchmark a server (vLLM's benchmark_serving flags; --llmperf)\n"
               "  chat \"PROMPT\" [--base-url URL] ...      stream one chat answer to the terminal\n"
               "  version                                 print the version\n");
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    usage(args.empty() ? stderr : stdout);
    return args.empty() ? 2 : 0;
  }
  std::string cmd = args[0];
  args.erase(args.begin());
  if (cmd == "serve") return troupe::serve_main(args);
  if (cmd == "node") return troupe::node_main(args);
  if (cmd == "bench") return troupe::bench_main(args);
  if (cmd == "chat") return troupe::chat_main(args);
  if (cmd == "version" || cmd == "--version") {
    std::printf("troupe %s\n", TROUPE_VERSION);
    return 0;
  }
  std::fprintf(stderr, "troupe: unknown command '%s'\n", cmd.c_str());
  usage(stderr);
  return 2;
}
