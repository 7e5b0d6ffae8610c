#include "tools/bench/llmperf.hpp"

#include "tools/bench/runner.hpp"
#include "tools/bench/setup.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <random>
#include <regex>

namespace troupe::bench {

using nlohmann::ordered_json;

namespace {

// llmperf's per-request metrics; inter_token_latency_s is every gap including the first token's, divided
// by the output tokens (so about E2E / tokens), as llmperf computes it.
struct LlmperfRow {
  double itl_s, ttft_s, e2e_s, out_tps, in_tokens, out_tokens;
};

LlmperfRow row_of(const RequestOutput& o) {
  double gaps = o.ttft;
  for (double g : o.itl) gaps += g;
  double n = o.output_tokens;
  return {n > 0 ? gaps / n : 0, o.ttft, o.latency, o.latency > 0 ? n / o.latency : 0, double(o.prompt_len), n};
}

std::string pyrepr(double v) { return py_float(v, false); }

void summarize_key(const char* key, std::vector<double> xs, bool print, ordered_json& out) {
  if (print) std::printf("%s\n", key);
  const std::string k = std::string("results_") + key;
  for (int q : {25, 50, 75, 90, 95, 99}) {
    double v = percentile(xs, q);
    if (print) std::printf("    p%d = %s\n", q, pyrepr(v).c_str());
    out[k + "_quantiles_p" + std::to_string(q)] = v;
  }
  double mn = xs.empty() ? 0 : *std::min_element(xs.begin(), xs.end());
  double mx = xs.empty() ? 0 : *std::max_element(xs.begin(), xs.end());
  double sd = stddev(xs, 1);
  if (print)
    std::printf("    mean = %s\n    min = %s\n    max = %s\n    stddev = %s\n", pyrepr(mean(xs)).c_str(),
                pyrepr(mn).c_str(), pyrepr(mx).c_str(), pyrepr(sd).c_str());
  out[k + "_mean"] = mean(xs);
  out[k + "_min"] = mn;
  out[k + "_max"] = mx;
  out[k + "_stddev"] = std::isnan(sd) ? ordered_json(nullptr) : ordered_json(sd);
}

std::string llmperf_prompt(const PromptVocab& v, int input_tokens, int output_tokens, std::mt19937_64& rng, int* len) {
  std::string head = "Randomly stream lines from the following text with " + std::to_string(output_tokens) +
                     " output tokens. Don't generate eos tokens:\n\n";
  int head_len = v.tok ? int(v.tok->encode(head, false).size()) : int(head.size());
  int body_len = std::max(1, input_tokens - head_len);
  int actual = 0;
  std::string body = sequential_prompt(v, body_len, rng(), &actual, rng);
  *len = head_len + actual;
  return head + body;
}

std::string llmperf_payload(const BenchArgs& a, const std::string& model, const std::string& prompt, int max_tokens) {
  ordered_json p;
  p["model"] = model;
  p["messages"] = {{{"role", "system"}, {"content", ""}}, {{"role", "user"}, {"content", prompt}}};
  p["stream"] = true;
  p["stream_options"] = {{"include_usage", true}};  // exact output counts without llmperf's tokenizer
  p["max_tokens"] = max_tokens;
  if (a.ignore_eos) p["ignore_eos"] = true;
  return p.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void save_llmperf(const BenchArgs& a, const std::string& model, ordered_json summary,
                  const std::vector<RequestOutput>& outputs) {
  std::string name = model + "_" + std::to_string(int(a.lp.mean_input_tokens)) + "_" +
                     std::to_string(int(a.lp.mean_output_tokens));
  name = std::regex_replace(std::regex_replace(name, std::regex("[^\\w\\d-]+"), "-"), std::regex("-+"), "-");
  std::filesystem::create_directories(a.lp.results_dir);
  ordered_json meta = {{"version", "2023-08-31"}, {"name", name + "_summary"}, {"model", model},
                       {"mean_input_tokens", a.lp.mean_input_tokens}, {"stddev_input_tokens", a.lp.stddev_input_tokens},
                       {"mean_output_tokens", a.lp.mean_output_tokens},
                       {"stddev_output_tokens", a.lp.stddev_output_tokens},
                       {"num_concurrent_requests", a.lp.num_concurrent_requests},
                       {"additional_sampling_params", "{}"}};
  meta.update(summary);
  meta["timestamp"] = static_cast<long long>(std::time(nullptr));
  auto dir = std::filesystem::path(a.lp.results_dir);
  std::ofstream(dir / (name + "_summary.json")) << meta.dump(4);
  ordered_json rows = ordered_json::array();
  for (auto& o : outputs) {
    auto r = row_of(o);
    rows.push_back({{"error_code", o.success ? ordered_json(nullptr) : ordered_json(-1)},
                    {"error_msg", o.error},
                    {"inter_token_latency_s", r.itl_s}, {"ttft_s", r.ttft_s}, {"end_to_end_latency_s", r.e2e_s},
                    {"request_output_throughput_token_per_s", r.out_tps}, {"number_total_tokens", r.in_tokens + r.out_tokens},
                    {"number_output_tokens", r.out_tokens}, {"number_input_tokens", r.in_tokens}});
  }
  std::ofstream(dir / (name + "_individual_responses.json")) << rows.dump(4);
}

}  // namespace

ordered_json llmperf_summary(const std::vector<RequestOutput>& outputs, double duration_s, bool print) {
  std::vector<LlmperfRow> ok;
  for (auto& o : outputs)
    if (o.success) ok.push_back(row_of(o));
  auto col = [&](double LlmperfRow::*f) {
    std::vector<double> v;
    for (auto& r : ok) v.push_back(r.*f);
    return v;
  };
  ordered_json out;
  summarize_key("inter_token_latency_s", col(&LlmperfRow::itl_s), print, out);
  summarize_key("ttft_s", col(&LlmperfRow::ttft_s), print, out);
  summarize_key("end_to_end_latency_s", col(&LlmperfRow::e2e_s), print, out);
  summarize_key("request_output_throughput_token_per_s", col(&LlmperfRow::out_tps), print, out);
  summarize_key("number_input_tokens", col(&LlmperfRow::in_tokens), print, out);
  summarize_key("number_output_tokens", col(&LlmperfRow::out_tokens), print, out);
  std::size_t errors = outputs.size() - ok.size();
  double out_tokens = 0;
  for (auto& r : ok) out_tokens += r.out_tokens;
  double overall = duration_s > 0 ? out_tokens / duration_s : 0;
  double per_min = duration_s > 0 ? double(ok.size()) / duration_s * 60 : 0;
  out["results_num_requests_started"] = outputs.size();
  out["results_error_rate"] = outputs.empty() ? 0.0 : double(errors) / double(outputs.size());
  out["results_number_errors"] = errors;
  out["results_error_code_frequency"] = errors ? "{-1: " + std::to_string(errors) + "}" : "{}";
  out["results_mean_output_throughput_token_per_s"] = overall;
  out["results_num_completed_requests"] = ok.size();
  out["results_num_completed_requests_per_min"] = per_min;
  if (print) {
    std::printf("Number Of Errored Requests: %zu\n", errors);
    if (errors) std::printf("Error Code Frequency\n{-1: %zu}\n", errors);
    std::printf("Overall Output Throughput: %s\n", pyrepr(overall).c_str());
    std::printf("Number Of Completed Requests: %zu\n", ok.size());
    std::printf("Completed Requests Per Minute: %s\n", pyrepr(per_min).c_str());
  }
  return out;
}

int llmperf_benchmark(const BenchArgs& a) {
  Setup s = make_setup(a);
  PromptVocab vocab(s.tokenizer ? &*s.tokenizer : nullptr);
  std::mt19937_64 rng(a.seed);
  std::vector<PreparedRequest> reqs;
  for (int i = 0; i < a.lp.max_num_completed_requests; ++i) {
    int in = positive_normal_int(rng, a.lp.mean_input_tokens, a.lp.stddev_input_tokens);
    int out = positive_normal_int(rng, a.lp.mean_output_tokens, a.lp.stddev_output_tokens);
    int len = 0;
    std::string prompt = llmperf_prompt(vocab, in, out, rng, &len);
    reqs.push_back({llmperf_payload(a, s.model_name, prompt, out), len});
  }
  RunOptions ro;
  ro.target = s.api_target;
  ro.chat = true;
  ro.max_concurrency = a.lp.num_concurrent_requests;
  ro.progress = !a.disable_tqdm;
  ro.stop_after_s = a.lp.timeout_s;
  auto res = run_requests(*s.client, reqs, ro);
  // llmperf counts the prompt it wrote, not the chat template around it that the server's usage includes.
  for (std::size_t i = 0; i < res.outputs.size(); ++i) res.outputs[i].prompt_len = reqs[i].prompt_len;
  std::printf("Results for token benchmark for %s queried with the openai api.\n\n", s.model_id.c_str());
  auto summary = llmperf_summary(res.outputs, res.duration_s, true);
  for (auto& o : res.outputs)
    if (!o.success) std::fprintf(stderr, "troupe bench: request failed: %s\n", o.error.c_str());
  if (!a.lp.results_dir.empty()) save_llmperf(a, s.model_id, summary, res.outputs);
  return summary["results_num_completed_requests"].get<std::size_t>() > 0 ? 0 : 1;
}

}  // namespace troupe::bench
