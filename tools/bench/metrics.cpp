#include "tools/bench/metrics.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>

namespace troupe::bench {

double percentile(std::vector<double> xs, double p) {
  if (xs.empty()) return 0;
  std::sort(xs.begin(), xs.end());
  double rank = p / 100.0 * double(xs.size() - 1);
  auto lo = static_cast<std::size_t>(std::floor(rank));
  auto hi = std::min(lo + 1, xs.size() - 1);
  double frac = rank - double(lo);
  return xs[lo] + (xs[hi] - xs[lo]) * frac;
}

double mean(std::span<const double> xs) {
  if (xs.empty()) return 0;
  return std::accumulate(xs.begin(), xs.end(), 0.0) / double(xs.size());
}

double stddev(std::span<const double> xs, int ddof) {
  if (xs.size() <= std::size_t(ddof)) return xs.empty() ? 0 : std::numeric_limits<double>::quiet_NaN();
  double m = mean(xs), acc = 0;
  for (double x : xs) acc += (x - m) * (x - m);
  return std::sqrt(acc / double(xs.size() - ddof));
}

Summary summarize_ms(const std::vector<double>& seconds, std::span<const double> ps) {
  Summary s;
  s.mean = mean(seconds) * 1000;
  s.std = stddev(seconds) * 1000;
  s.median = percentile(seconds, 50) * 1000;
  for (double p : ps) s.percentiles.emplace_back(p, percentile(seconds, p) * 1000);
  return s;
}

Goodput parse_goodput(const std::vector<std::string>& pairs) {
  Goodput g;
  for (const auto& pair : pairs) {
    auto colon = pair.find(':');
    double v = 0;
    bool ok = colon != std::string::npos && pair.find(':', colon + 1) == std::string::npos;
    if (ok) {
      try {
        std::size_t used = 0;
        v = std::stod(pair.substr(colon + 1), &used);
        ok = used == pair.size() - colon - 1;
      } catch (const std::exception&) {
        ok = false;
      }
    }
    if (!ok)
      throw std::invalid_argument("Invalid format found for service level objectives. Specify service level "
                                  "objectives for goodput as \"KEY:VALUE\" pairs, where the key is a metric name, "
                                  "and the value is a number in milliseconds.");
    std::string name = pair.substr(0, colon);
    if (name != "ttft" && name != "tpot" && name != "e2el")
      throw std::invalid_argument("Invalid metric name found, " + name + ": " + pair.substr(colon + 1) +
                                  ". The service level objective name should be one of ['ttft', 'tpot', 'e2el'].");
    if (v < 0)
      throw std::invalid_argument("Invalid value found, " + name + ": " + pair.substr(colon + 1) +
                                  ". The service level objective value should be non-negative.");
    (name == "ttft" ? g.ttft_ms : name == "tpot" ? g.tpot_ms : g.e2el_ms) = v;
  }
  return g;
}

namespace {

bool is_good(const Goodput& g, double ttft, double tpot, double e2el) {
  if (g.ttft_ms && ttft > *g.ttft_ms / 1000) return false;
  if (g.tpot_ms && tpot > *g.tpot_ms / 1000) return false;
  if (g.e2el_ms && e2el > *g.e2el_ms / 1000) return false;
  return true;
}

// Peak output tokens per one-second bucket, and the requests active in the busiest bucket
// (vLLM: buckets from the first start; each token at start + ttft + cumulative ITLs).
void peak_buckets(const std::vector<RequestOutput>& outputs, BenchmarkMetrics& m) {
  double t0 = std::numeric_limits<double>::infinity(), t1 = -t0;
  for (const auto& o : outputs) {
    if (!o.success) continue;
    t0 = std::min(t0, o.start_time);
    t1 = std::max(t1, o.start_time + o.latency);
  }
  if (!std::isfinite(t0)) return;
  auto n = static_cast<std::size_t>(std::ceil(t1 - t0)) + 1;
  std::vector<double> tokens(n, 0), active(n, 0);
  for (const auto& o : outputs) {
    if (!o.success) continue;
    double t = o.start_time + o.ttft;
    auto add = [&](double at) {
      auto b = static_cast<long long>(at - t0);  // int() truncates toward zero, as Python's does
      if (b >= 0 && std::size_t(b) < n) tokens[b] += 1;
    };
    add(t);
    for (double gap : o.itl) add(t += gap);
    auto first = static_cast<long long>(o.start_time - t0), last = static_cast<long long>(o.start_time + o.latency - t0);
    for (auto s = first; s <= last && std::size_t(s) < n; ++s) active[s] += 1;
  }
  m.max_output_tokens_per_s = *std::max_element(tokens.begin(), tokens.end());
  m.max_concurrent_requests = static_cast<int>(*std::max_element(active.begin(), active.end()));
}

}  // namespace

BenchmarkMetrics calculate_metrics(const std::vector<RequestOutput>& outputs, double duration_s,
                                   std::span<const double> percentiles, const Goodput& goodput) {
  BenchmarkMetrics m;
  std::vector<double> ttfts, tpots, itls, e2els;
  int good = 0;
  for (const auto& o : outputs) {
    if (!o.success) {
      m.actual_output_lens.push_back(0);
      ++m.failed;
      continue;
    }
    // vLLM: with no usage and no tokenizer a response counts as one token.
    int out_len = o.output_tokens > 0 ? o.output_tokens : 1;
    m.actual_output_lens.push_back(out_len);
    m.total_input += o.prompt_len;
    double tpot = 0;  // a one-token answer has TPOT 0 for goodput and is left out of the TPOT sample
    if (out_len > 1) {
      tpot = (o.latency - o.ttft) / (out_len - 1);
      tpots.push_back(tpot);
    }
    itls.insert(itls.end(), o.itl.begin(), o.itl.end());
    ttfts.push_back(o.ttft);
    e2els.push_back(o.latency);
    if (goodput.any() && is_good(goodput, o.ttft, tpot, o.latency)) ++good;
    ++m.completed;
  }
  for (int n : m.actual_output_lens) m.total_output += n;
  m.request_throughput = m.completed / duration_s;
  m.request_goodput = good / duration_s;
  m.output_throughput = double(m.total_output) / duration_s;
  m.total_token_throughput = double(m.total_input + m.total_output) / duration_s;
  m.ttft = summarize_ms(ttfts, percentiles);
  m.tpot = summarize_ms(tpots, percentiles);
  m.itl = summarize_ms(itls, percentiles);
  m.e2el = summarize_ms(e2els, percentiles);
  peak_buckets(outputs, m);
  return m;
}

std::string py_float(double v, bool int_if_whole) {
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  if (std::isnan(v)) return "nan";
  if (int_if_whole && v == std::trunc(v) && std::fabs(v) < 1e15) return std::to_string(static_cast<long long>(v));
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v);  // shortest round-trip, like Python's repr
  std::string s(buf, r.ptr);
  if (s.find_first_of(".en") == std::string::npos) s += ".0";
  return s;
}

}  // namespace troupe::bench
