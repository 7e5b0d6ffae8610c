#pragma once
#include <string>
#include <vector>

namespace troupe {
// `troupe bench ...`: returns the process exit code.
int bench_main(const std::vector<std::string>& args);
}  // namespace troupe
