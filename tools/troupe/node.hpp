#pragma once
#include <string>
#include <vector>

namespace troupe {
// `troupe node --join HOST:PORT --join-token SECRET [--backend sim|cpu|cuda] [--node-name NAME] [--devices N]`
int node_main(const std::vector<std::string>& args);
}
