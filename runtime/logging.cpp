#include "runtime/logging.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>

namespace troupe {

void init_logging(const std::string& level) {
  static auto logger = [] {
    auto l = spdlog::stderr_color_mt("troupe");
    l->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");
    spdlog::set_default_logger(l);
    return l;
  }();
  logger->set_level(spdlog::level::from_str(level));
  logger->flush_on(spdlog::level::info);
}

}  // namespace troupe
