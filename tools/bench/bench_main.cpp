// `troupe bench`: vLLM's serving benchmark (default) or llmperf's (--llmperf), against any
// OpenAI-compatible server.
#include "tools/bench/bench.hpp"

#include "tools/bench/llmperf.hpp"
#include "tools/bench/report.hpp"
#include "tools/bench/runner.hpp"
#include "tools/bench/setup.hpp"

#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <thread>

namespace troupe {
namespace bench {
namespace {

double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto s = [](const timeval& t) { return double(t.tv_sec) + t.tv_usec / 1e6; };
  return s(ru.ru_utime) + s(ru.ru_stime);
}

std::string now_stamp() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%d-%H%M%S", std::localtime(&t));
  return buf;
}

// vLLM's wait_for_endpoint: the first prompt, retried until it succeeds or the timeout passes.
bool ready_check(const BenchArgs& a, Setup& s, const PreparedRequest& probe) {
  if (a.ready_check_timeout_sec <= 0) {
    std::printf("Skipping endpoint ready check.\n");
    return true;
  }
  std::printf("Starting initial single prompt test run...\n");
  std::fflush(stdout);
  auto deadline = Clock::now() + std::chrono::duration<double>(a.ready_check_timeout_sec);
  for (;;) {
    auto out = run_one(*s.client, s.api_target, a.chat(), probe);
    if (out.success) {
      std::printf("Initial test run completed.\n");
      return true;
    }
    // A server that answers with an error will keep doing so: only a refused connection is worth waiting on.
    if (Clock::now() >= deadline || out.error.rfind("connect:", 0) != 0) {
      std::fprintf(stderr,
                   "troupe bench: Initial test run failed - Please make sure benchmark arguments are correctly "
                   "specified. Error: %s\n", out.error.c_str());
      return false;
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}

void save(const BenchArgs& a, const ReportContext& ctx, const nlohmann::ordered_json& result) {
  std::filesystem::path file = a.result_filename.empty() ? default_result_filename(ctx) : a.result_filename;
  if (!a.result_dir.empty()) {
    std::filesystem::create_directories(a.result_dir);
    file = std::filesystem::path(a.result_dir) / file;
  }
  std::ofstream(file) << result.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

int serving_benchmark(const BenchArgs& a) {
  auto percentiles = parse_percentiles(a.metric_percentiles);
  auto goodput = parse_goodput(a.goodput);
  Setup s = make_setup(a);
  auto samples = sample_random(a.random, s.tokenizer ? &*s.tokenizer : nullptr);
  std::vector<PreparedRequest> reqs;
  reqs.reserve(samples.size());
  for (auto& r : samples)
    reqs.push_back({make_payload(a.chat(), s.model_name, r.prompt, r.expected_output_len, a.ignore_eos), r.prompt_len});
  if (!ready_check(a, s, reqs.front())) return 1;

  std::printf("Starting main benchmark run...\n");
  std::printf("Traffic request rate: %s\n", py_float(a.request_rate, false).c_str());
  std::printf("Burstiness factor: %s (%s)\n", py_float(a.burstiness, false).c_str(),
              a.burstiness == 1.0 ? "Poisson process" : "Gamma distribution");
  std::printf("Maximum request concurrency: %s\n",
              a.max_concurrency ? std::to_string(*a.max_concurrency).c_str() : "None");
  std::fflush(stdout);

  RunOptions ro{s.api_target, a.chat(), a.request_rate, a.burstiness, a.max_concurrency, a.seed, !a.disable_tqdm, 0};
  double cpu0 = cpu_seconds();
  auto res = run_requests(*s.client, reqs, ro);
  double cpu = cpu_seconds() - cpu0;

  auto m = calculate_metrics(res.outputs, res.duration_s, percentiles, goodput);
  if (m.failed > 0) {
    std::printf("Failed requests during benchmark run detected (capping to 10):\n");
    int shown = 0;
    for (auto& o : res.outputs)
      if (!o.success && shown < 10) std::printf("Error %d: %s\n", shown++, o.error.c_str());
  }
  ReportContext ctx{a.chat() ? "openai-chat" : "openai", a.label, s.model_id, s.tokenizer_id, a.random.num_prompts,
                    a.request_rate, a.burstiness, a.max_concurrency, split_list(a.percentile_metrics), percentiles,
                    goodput.any(), a.save_detailed, now_stamp()};
  auto result = report(ctx, m, res.outputs, res.duration_s);
  std::printf("troupe bench: client CPU %.2f s over %.2f s wall (%.1f%% of one core), %zu connections opened\n", cpu,
              res.duration_s, 100 * cpu / res.duration_s, s.client->connections_opened());
  if (a.save_result) save(a, ctx, result);
  return m.completed > 0 ? 0 : 1;
}

}  // namespace
}  // namespace bench

int bench_main(const std::vector<std::string>& args) {
  bool help = false;
  try {
    auto a = bench::parse_bench_args(args, &help);
    if (help) {
      std::printf("%s", bench::bench_usage());
      return 0;
    }
    bench::raise_open_file_limit();
    return a.llmperf ? bench::llmperf_benchmark(a) : bench::serving_benchmark(a);
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "troupe bench: %s\n%s", e.what(), bench::bench_usage());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "troupe bench: %s\n", e.what());
    return 1;
  }
}

}  // namespace troupe
