#pragma once
// Process-wide logging (spdlog to stderr). Level names as in the config key log-level.
#include <spdlog/spdlog.h>

#include <string>

namespace troupe {
void init_logging(const std::string& level);
}
