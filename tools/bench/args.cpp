#include "tools/bench/args.hpp"

#include <functional>
#include <map>
#include <stdexcept>

namespace troupe::bench {

std::optional<Url> parse_url(const std::string& url) {
  const std::string scheme = "http://";
  if (url.rfind(scheme, 0) != 0) return std::nullopt;
  std::string rest = url.substr(scheme.size());
  Url u;
  auto slash = rest.find('/');
  std::string hostport = rest.substr(0, slash);
  if (slash != std::string::npos) u.path = rest.substr(slash);
  while (!u.path.empty() && u.path.back() == '/') u.path.pop_back();
  auto colon = hostport.rfind(':');
  if (!hostport.empty() && hostport.front() == '[') {  // [v6]:port
    auto close = hostport.find(']');
    if (close == std::string::npos) return std::nullopt;
    u.host = hostport.substr(1, close - 1);
    colon = hostport.find(':', close);
  } else {
    u.host = hostport.substr(0, colon);
  }
  if (colon != std::string::npos) {
    try {
      int p = std::stoi(hostport.substr(colon + 1));
      if (p < 1 || p > 65535) return std::nullopt;
      u.port = static_cast<std::uint16_t>(p);
    } catch (const std::exception&) {
      return std::nullopt;
    }
  }
  if (u.host.empty()) return std::nullopt;
  return u;
}

namespace {

double to_double(const std::string& flag, const std::string& v) {
  try {
    std::size_t used = 0;
    double d = std::stod(v, &used);
    if (used == v.size()) return d;
  } catch (const std::exception&) {
  }
  throw std::invalid_argument(flag + ": expected a number, got '" + v + "'");
}

long long to_int(const std::string& flag, const std::string& v) {
  double d = to_double(flag, v);
  if (d != static_cast<double>(static_cast<long long>(d))) throw std::invalid_argument(flag + ": expected an integer, got '" + v + "'");
  return static_cast<long long>(d);
}

using Setter = std::function<void(BenchArgs&, const std::string& flag, const std::string& value)>;

// Flags that take one value. Underscores are accepted for dashes (both spellings exist in vLLM's docs).
const std::map<std::string, Setter>& valued() {
  static const std::map<std::string, Setter> m = {
    {"--base-url", [](BenchArgs& a, auto&, auto& v) { a.base_url = v; }},
    {"--host", [](BenchArgs& a, auto&, auto& v) { a.host = v; }},
    {"--port", [](BenchArgs& a, auto& f, auto& v) { a.port = int(to_int(f, v)); }},
    {"--endpoint", [](BenchArgs& a, auto&, auto& v) { a.endpoint = v; }},
    {"--backend", [](BenchArgs& a, auto&, auto& v) { a.backend = v; }},
    {"--model", [](BenchArgs& a, auto&, auto& v) { a.model = v; }},
    {"--served-model-name", [](BenchArgs& a, auto&, auto& v) { a.served_model_name = v; }},
    {"--tokenizer", [](BenchArgs& a, auto&, auto& v) { a.tokenizer = v; }},
    {"--label", [](BenchArgs& a, auto&, auto& v) { a.label = v; }},
    {"--dataset-name", [](BenchArgs& a, auto&, auto& v) { a.dataset_name = v; }},
    {"--num-prompts", [](BenchArgs& a, auto& f, auto& v) { a.random.num_prompts = int(to_int(f, v)); }},
    {"--random-input-len", [](BenchArgs& a, auto& f, auto& v) { a.random.input_len = int(to_int(f, v)); }},
    {"--random-output-len", [](BenchArgs& a, auto& f, auto& v) { a.random.output_len = int(to_int(f, v)); }},
    {"--random-prefix-len", [](BenchArgs& a, auto& f, auto& v) { a.random.prefix_len = int(to_int(f, v)); }},
    {"--random-range-ratio", [](BenchArgs& a, auto& f, auto& v) { a.random.range_ratio = to_double(f, v); }},
    {"--request-rate", [](BenchArgs& a, auto& f, auto& v) { a.request_rate = to_double(f, v); }},
    {"--burstiness", [](BenchArgs& a, auto& f, auto& v) { a.burstiness = to_double(f, v); }},
    {"--max-concurrency", [](BenchArgs& a, auto& f, auto& v) { a.max_concurrency = int(to_int(f, v)); }},
    {"--percentile-metrics", [](BenchArgs& a, auto&, auto& v) { a.percentile_metrics = v; }},
    {"--metric-percentiles", [](BenchArgs& a, auto&, auto& v) { a.metric_percentiles = v; }},
    {"--result-filename", [](BenchArgs& a, auto&, auto& v) { a.result_filename = v; }},
    {"--result-dir", [](BenchArgs& a, auto&, auto& v) { a.result_dir = v; }},
    {"--seed", [](BenchArgs& a, auto& f, auto& v) { a.seed = std::uint64_t(to_int(f, v)); }},
    {"--ready-check-timeout-sec", [](BenchArgs& a, auto& f, auto& v) { a.ready_check_timeout_sec = to_double(f, v); }},
    {"--client-threads", [](BenchArgs& a, auto& f, auto& v) { a.client_threads = int(to_int(f, v)); }},
    {"--mean-input-tokens", [](BenchArgs& a, auto& f, auto& v) { a.lp.mean_input_tokens = to_double(f, v); }},
    {"--stddev-input-tokens", [](BenchArgs& a, auto& f, auto& v) { a.lp.stddev_input_tokens = to_double(f, v); }},
    {"--mean-output-tokens", [](BenchArgs& a, auto& f, auto& v) { a.lp.mean_output_tokens = to_double(f, v); }},
    {"--stddev-output-tokens", [](BenchArgs& a, auto& f, auto& v) { a.lp.stddev_output_tokens = to_double(f, v); }},
    {"--num-concurrent-requests", [](BenchArgs& a, auto& f, auto& v) { a.lp.num_concurrent_requests = int(to_int(f, v)); }},
    {"--max-num-completed-requests",
     [](BenchArgs& a, auto& f, auto& v) { a.lp.max_num_completed_requests = int(to_int(f, v)); }},
    {"--timeout", [](BenchArgs& a, auto& f, auto& v) { a.lp.timeout_s = to_double(f, v); }},
    {"--results-dir", [](BenchArgs& a, auto&, auto& v) { a.lp.results_dir = v; }},
  };
  return m;
}

const std::map<std::string, bool BenchArgs::*>& flags() {
  static const std::map<std::string, bool BenchArgs::*> m = {
    {"--ignore-eos", &BenchArgs::ignore_eos},     {"--save-result", &BenchArgs::save_result},
    {"--save-detailed", &BenchArgs::save_detailed}, {"--disable-tqdm", &BenchArgs::disable_tqdm},
    {"--llmperf", &BenchArgs::llmperf},
  };
  return m;
}

std::string normalize(std::string flag) {
  for (std::size_t i = 2; i < flag.size(); ++i)
    if (flag[i] == '_') flag[i] = '-';
  return flag;
}

void validate(BenchArgs& a) {
  if (a.backend == "vllm") a.backend = "openai";
  if (a.backend != "openai" && a.backend != "openai-chat")
    throw std::invalid_argument("--backend: '" + a.backend + "' is not supported (openai, vllm, openai-chat)");
  if (a.endpoint.empty()) a.endpoint = a.chat() || a.llmperf ? "/v1/chat/completions" : "/v1/completions";
  if (a.dataset_name != "random") throw std::invalid_argument("--dataset-name: only 'random' is supported");
  if (!(a.burstiness > 0)) throw std::invalid_argument("--burstiness: a positive burstiness factor is expected");
  if (!(a.request_rate > 0)) throw std::invalid_argument("--request-rate: must be positive (inf for all at once)");
  if (a.max_concurrency && *a.max_concurrency < 1) throw std::invalid_argument("--max-concurrency: must be at least 1");
  if (a.client_threads < 1 || a.client_threads > 64) throw std::invalid_argument("--client-threads: 1..64");
  if (a.lp.num_concurrent_requests < 1) throw std::invalid_argument("--num-concurrent-requests: must be at least 1");
}

}  // namespace

BenchArgs parse_bench_args(const std::vector<std::string>& args, bool* help) {
  BenchArgs a;
  *help = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string flag = args[i], value;
    bool inline_value = false;
    if (auto eq = flag.find('='); flag.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = flag.substr(eq + 1), flag = flag.substr(0, eq), inline_value = true;
    }
    flag = normalize(flag);
    if (flag == "--help" || flag == "-h") {
      *help = true;
      return a;
    }
    if (auto f = flags().find(flag); f != flags().end()) {
      a.*(f->second) = true;
      continue;
    }
    if (flag == "--goodput") {  // nargs="+": every following word up to the next flag
      if (inline_value) a.goodput.push_back(value);
      while (i + 1 < args.size() && args[i + 1].rfind("--", 0) != 0) a.goodput.push_back(args[++i]);
      if (a.goodput.empty()) throw std::invalid_argument("--goodput: expected KEY:VALUE pairs");
      continue;
    }
    auto s = valued().find(flag);
    if (s == valued().end()) throw std::invalid_argument("unknown option '" + args[i] + "'");
    if (!inline_value) {
      if (i + 1 >= args.size()) throw std::invalid_argument(flag + ": expected a value");
      value = args[++i];
    }
    s->second(a, flag, value);
  }
  validate(a);
  return a;
}

const char* bench_usage() {
  return "usage: troupe bench [--base-url URL | --host H --port P] [--endpoint PATH]\n"
         "                    [--backend openai|vllm|openai-chat] [--model M] [--served-model-name N] [--tokenizer DIR]\n"
         "                    [--dataset-name random] [--num-prompts N] [--random-input-len N] [--random-output-len N]\n"
         "                    [--random-range-ratio R] [--random-prefix-len N] [--request-rate RPS] [--burstiness B]\n"
         "                    [--max-concurrency N] [--ignore-eos] [--percentile-metrics ttft,tpot,itl,e2el]\n"
         "                    [--metric-percentiles 50,90,99] [--goodput ttft:MS tpot:MS e2el:MS] [--seed N]\n"
         "                    [--save-result] [--save-detailed] [--result-dir DIR] [--result-filename F] [--label L]\n"
         "                    [--disable-tqdm] [--ready-check-timeout-sec S] [--client-threads N]\n"
         "  Flags and metrics are vLLM's benchmark_serving.py ones; the printed block and saved JSON match it.\n"
         "  Without a tokenizer (--tokenizer, or a local model directory) prompts are printable ASCII, one byte per\n"
         "  token, and token counts come from the server's usage.\n\n"
         "       troupe bench --llmperf [--mean-input-tokens 550] [--stddev-input-tokens 150] [--mean-output-tokens 150]\n"
         "                    [--stddev-output-tokens 80] [--num-concurrent-requests 10]\n"
         "                    [--max-num-completed-requests 10] [--timeout 90] [--results-dir DIR] (+ the URL/model flags)\n"
         "  llmperf's token_benchmark_ray.py: fixed concurrency on /v1/chat/completions, llmperf's summary.\n";
}

}  // namespace troupe::bench
