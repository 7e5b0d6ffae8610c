#include "tools/bench/report.hpp"

#include <cmath>
#include <cstdio>
#include <stdexcept>

namespace troupe::bench {

using nlohmann::ordered_json;

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos <= s.size()) {
    auto comma = s.find(',', pos);
    if (comma == std::string::npos) comma = s.size();
    std::string item = s.substr(pos, comma - pos);
    if (!item.empty()) out.push_back(item);
    pos = comma + 1;
  }
  return out;
}

std::vector<double> parse_percentiles(const std::string& s) {
  std::vector<double> out;
  for (const auto& item : split_list(s)) {
    std::size_t used = 0;
    double p = -1;
    try {
      p = std::stod(item, &used);
    } catch (const std::exception&) {
    }
    if (used != item.size() || p < 0 || p > 100)
      throw std::invalid_argument("--metric-percentiles: '" + item + "' is not a percentile in [0, 100]");
    out.push_back(p);
  }
  return out;
}

std::string centered(const std::string& title, char fill, int width) {
  int pad = std::max(0, width - int(title.size()));
  return std::string(pad / 2, fill) + title + std::string(pad - pad / 2, fill);
}

namespace {

void line_i(const char* label, long long v) { std::printf("%-40s %-10lld\n", label, v); }
void line_f(const std::string& label, double v) { std::printf("%-40s %-10.2f\n", label.c_str(), v); }

ordered_json detail_lists(const std::vector<RequestOutput>& outputs, const BenchmarkMetrics& m) {
  ordered_json j;
  auto& in = j["input_lens"] = ordered_json::array();
  for (auto& o : outputs) in.push_back(o.prompt_len);
  j["output_lens"] = m.actual_output_lens;
  auto& tt = j["ttfts"] = ordered_json::array();
  for (auto& o : outputs) tt.push_back(o.ttft);
  auto& itls = j["itls"] = ordered_json::array();
  for (auto& o : outputs) itls.push_back(o.itl);
  return j;
}

void add_metric(ordered_json& result, const ReportContext& ctx, const std::string& key, const std::string& name,
                const std::string& header, const Summary& s) {
  bool selected = false;
  for (auto& k : ctx.percentile_metrics) selected |= k == key;
  if (!selected) return;
  std::printf("%s\n", centered(header, '-').c_str());
  line_f("Mean " + name + " (ms):", s.mean);
  line_f("Median " + name + " (ms):", s.median);
  result["mean_" + key + "_ms"] = s.mean;
  result["median_" + key + "_ms"] = s.median;
  result["std_" + key + "_ms"] = s.std;
  for (auto& [p, v] : s.percentiles) {
    std::string word = py_float(p, true);
    line_f("P" + word + " " + name + " (ms):", v);
    result["p" + word + "_" + key + "_ms"] = v;
  }
}

ordered_json header_json(const ReportContext& ctx) {
  ordered_json r;
  r["date"] = ctx.date;
  r["endpoint_type"] = ctx.backend;
  r["backend"] = ctx.backend;
  r["label"] = ctx.label.empty() ? ordered_json(nullptr) : ordered_json(ctx.label);
  r["model_id"] = ctx.model_id;
  r["tokenizer_id"] = ctx.tokenizer_id ? ordered_json(*ctx.tokenizer_id) : ordered_json(nullptr);
  r["num_prompts"] = ctx.num_prompts;
  r["request_rate"] = std::isinf(ctx.request_rate) ? ordered_json("inf") : ordered_json(ctx.request_rate);
  r["burstiness"] = ctx.burstiness;
  r["max_concurrency"] = ctx.max_concurrency ? ordered_json(*ctx.max_concurrency) : ordered_json(nullptr);
  return r;
}

void print_totals(const ReportContext& ctx, const BenchmarkMetrics& m, double duration_s) {
  std::printf("%s\n", centered(" Serving Benchmark Result ", '=').c_str());
  line_i("Successful requests:", m.completed);
  line_i("Failed requests:", m.failed);
  if (ctx.max_concurrency) line_i("Maximum request concurrency:", *ctx.max_concurrency);
  if (!std::isinf(ctx.request_rate)) line_f("Request rate configured (RPS):", ctx.request_rate);
  line_f("Benchmark duration (s):", duration_s);
  line_i("Total input tokens:", m.total_input);
  line_i("Total generated tokens:", m.total_output);
  line_f("Request throughput (req/s):", m.request_throughput);
  if (ctx.goodput) line_f("Request goodput (req/s):", m.request_goodput);
  line_f("Output token throughput (tok/s):", m.output_throughput);
  line_f("Peak output token throughput (tok/s):", m.max_output_tokens_per_s);
  line_f("Peak concurrent requests:", m.max_concurrent_requests);
  line_f("Total token throughput (tok/s):", m.total_token_throughput);
}

}  // namespace

ordered_json report(const ReportContext& ctx, const BenchmarkMetrics& m, const std::vector<RequestOutput>& outputs,
                    double duration_s) {
  print_totals(ctx, m, duration_s);
  ordered_json r = header_json(ctx);
  r["duration"] = duration_s;
  r["completed"] = m.completed;
  r["failed"] = m.failed;
  r["total_input_tokens"] = m.total_input;
  r["total_output_tokens"] = m.total_output;
  r["request_throughput"] = m.request_throughput;
  r["request_goodput"] = ctx.goodput ? ordered_json(m.request_goodput) : ordered_json(nullptr);
  r["output_throughput"] = m.output_throughput;
  r["total_token_throughput"] = m.total_token_throughput;
  if (ctx.save_detailed) r.update(detail_lists(outputs, m));
  auto& lat = r["latencies"] = ordered_json::array();
  for (auto& o : outputs) lat.push_back(o.latency);
  if (ctx.save_detailed) {
    auto& st = r["start_times"] = ordered_json::array();
    for (auto& o : outputs) st.push_back(o.start_time);
  }
  auto& qt = r["queue_times"] = ordered_json::array();
  for (auto& o : outputs) qt.push_back(o.queue_time);
  if (ctx.save_detailed) {
    auto& gt = r["generated_texts"] = ordered_json::array();
    auto& er = r["errors"] = ordered_json::array();
    for (auto& o : outputs) gt.push_back(o.generated_text), er.push_back(o.error);
  }
  r["max_output_tokens_per_s"] = m.max_output_tokens_per_s;
  r["max_concurrent_requests"] = m.max_concurrent_requests;
  r["rtfx"] = 0.0;
  add_metric(r, ctx, "ttft", "TTFT", "Time to First Token", m.ttft);
  add_metric(r, ctx, "tpot", "TPOT", "Time per Output Token (excl. 1st token)", m.tpot);
  add_metric(r, ctx, "itl", "ITL", "Inter-token Latency", m.itl);
  add_metric(r, ctx, "e2el", "E2EL", "End-to-end Latency", m.e2el);
  if (ctx.max_concurrency) {  // vLLM adds these only with a concurrency cap, and prints them only if selected
    std::vector<double> q, qe;
    for (auto& o : outputs)
      if (o.success) q.push_back(o.queue_time), qe.push_back(o.latency + o.queue_time);
    add_metric(r, ctx, "client_queue_time", "Client Queue Time", "Client-side Queueing",
               summarize_ms(q, ctx.percentiles));
    if (!std::isinf(ctx.request_rate))
      add_metric(r, ctx, "e2el_including_client_queue", "E2EL incl. Client Queue",
                 "Queue-inclusive End-to-end Latency", summarize_ms(qe, ctx.percentiles));
  }
  std::printf("%s\n", std::string(50, '=').c_str());
  std::fflush(stdout);
  return r;
}

std::string default_result_filename(const ReportContext& ctx) {
  std::string base = ctx.model_id.substr(ctx.model_id.find_last_of('/') == std::string::npos
                                           ? 0 : ctx.model_id.find_last_of('/') + 1);
  std::string conc = ctx.max_concurrency ? "-concurrency" + std::to_string(*ctx.max_concurrency) : "";
  return (ctx.label.empty() ? ctx.backend : ctx.label) + "-" + py_float(ctx.request_rate, false) + "qps" + conc + "-" +
         base + "-" + ctx.date + ".json";
}

}  // namespace troupe::bench
