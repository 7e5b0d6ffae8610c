#pragma once
#include <string>
#include <vector>

namespace troupe {
// `troupe serve`: loads the config, starts the coordinator, serves until SIGINT/SIGTERM, then drains.
// Exit codes: 0 after a clean shutdown, 1 when startup fails, 2 for a bad config or command line.
int serve_main(const std::vector<std::string>& args);
}
