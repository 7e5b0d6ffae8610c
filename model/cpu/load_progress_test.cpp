#define BOOST_TEST_MODULE load_progress
#include <boost/test/unit_test.hpp>

#include "model/cpu/load_progress.hpp"

#include <algorithm>
#include <vector>

using namespace troupe::cpu;

BOOST_AUTO_TEST_CASE(lines_show_percent_bytes_and_rate) {
  BOOST_TEST(progress_line(1'500'000'000, 3'000'000'000, 2.0) ==
             "loading weights:  50% (1.500 of 3.000 GB, 0.75 GB/s)");
  BOOST_TEST(final_line(3'000'000'000, 1.5) == "loaded 3.000 GB of weights in 1.50 s (2.00 GB/s)");
  BOOST_TEST(progress_line(0, 0, 0) == "loading weights:   0% (0.000 of 0.000 GB, 0.00 GB/s)");
}

// The reporter writes on its own while nothing is added (one tensor converting for a long time), and
// stops at finish(): the final line comes last and only once.
BOOST_AUTO_TEST_CASE(reporter_ticks_without_progress_calls_and_stops_at_finish) {
  std::mutex mu;
  std::vector<std::string> lines;
  {
    LoadProgress p(
        1000,
        [&](const std::string& l) {
          std::lock_guard lk(mu);
          lines.push_back(l);
        },
        std::chrono::milliseconds(20));
    p.add(250);
    std::this_thread::sleep_for(std::chrono::milliseconds(130));
    BOOST_TEST(p.finish().find("loaded 0.000 GB") == 0u);
    p.finish();
  }
  std::lock_guard lk(mu);
  BOOST_TEST(lines.size() >= 3u);
  BOOST_TEST(lines.front().find(" 25% ") != std::string::npos);
  BOOST_TEST(lines.back().find("loaded ") == 0u);
  BOOST_TEST(std::count_if(lines.begin(), lines.end(), [](auto& l) { return l.find("loaded ") == 0; }) == 1);
}

BOOST_AUTO_TEST_CASE(a_short_load_prints_only_the_total) {
  std::vector<std::string> lines;
  LoadProgress p(10, [&](const std::string& l) { lines.push_back(l); });
  p.add(10);
  p.finish();
  BOOST_TEST(lines.size() == 1u);
}
