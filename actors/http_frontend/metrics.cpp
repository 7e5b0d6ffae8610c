#include "actors/http_frontend/metrics.hpp"

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>

#include <charconv>
#include <chrono>
#include <cmath>

namespace troupe {
namespace {

std::string escape_label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

// Python's prometheus_client spelling: 1.0, 0.25, 2560.0 (dashboards match `le` labels as strings).
std::string num(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  char buf[64];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v);
  std::string s(buf, p);
  if (s.find_first_of(".eE") == std::string::npos) s += ".0";
  return s;
}

struct Writer {
  std::string out;
  std::string labels;  // model_name="..."

  void head(const char* name, const char* type, const char* help) {
    out += "# HELP ";
    out += name;
    out += ' ';
    out += help;
    out += "\n# TYPE ";
    out += name;
    out += ' ';
    out += type;
    out += '\n';
  }
  void sample(const std::string& name, const std::string& extra_labels, double v) {
    out += name;
    out += '{';
    out += labels;
    if (!extra_labels.empty()) out += ',' + extra_labels;
    out += "} ";
    out += num(v);
    out += '\n';
  }
  void gauge(const char* name, const char* help, double v) {
    head(name, "gauge", help);
    sample(name, "", v);
  }
  void counter(const char* name, const char* help, double v) {
    head(name, "counter", help);
    sample(name, "", v);
  }
  void histogram(const char* name, const char* help, schema::Histogram::Reader h) {
    head(name, "histogram", help);
    std::string n = name;
    auto bounds = h.getUpperBounds();
    auto counts = h.getBucketCounts();
    std::uint64_t cum = 0;
    for (unsigned i = 0; i < counts.size(); ++i) {
      cum += counts[i];
      std::string le = i < bounds.size() ? num(bounds[i]) : "+Inf";
      sample(n + "_bucket", "le=\"" + le + "\"", double(cum));
    }
    if (counts.size() == 0) sample(n + "_bucket", "le=\"+Inf\"", 0);
    sample(n + "_sum", "", h.getSum());
    sample(n + "_count", "", double(h.getCount()));
  }
};

}  // namespace

std::string render_prometheus(schema::MetricsSnapshot::Reader m, const std::string& model_name) {
  Writer w;
  w.labels = "model_name=\"" + escape_label(model_name) + "\"";
  w.gauge("vllm:num_requests_running", "Number of requests in model execution batches.", m.getNumRunning());
  w.gauge("vllm:num_requests_waiting", "Number of requests waiting to be processed.", m.getNumWaiting());
  double total = m.getKvBlocksTotal();
  double usage = total > 0 ? 1.0 - double(m.getKvBlocksFree()) / total : 0.0;
  w.gauge("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", usage);
  w.counter("vllm:prefix_cache_queries_total", "Prefix cache queries, in terms of number of queried tokens.",
            double(m.getPrefixCacheQueriesTotal()));
  w.counter("vllm:prefix_cache_hits_total", "Prefix cache hits, in terms of number of cached tokens.",
            double(m.getPrefixCacheHitsTotal()));
  w.counter("vllm:num_preemptions_total", "Cumulative number of preemption from the engine.",
            double(m.getPreemptionsTotal()));
  w.counter("vllm:prompt_tokens_total", "Number of prefill tokens processed.", double(m.getPromptTokensTotal()));
  w.counter("vllm:generation_tokens_total", "Number of generation tokens processed.",
            double(m.getGenerationTokensTotal()));
  w.head("vllm:request_success_total", "counter", "Count of successfully processed requests.");
  w.sample("vllm:request_success_total", "finished_reason=\"stop\"", double(m.getRequestsFinishedStop()));
  w.sample("vllm:request_success_total", "finished_reason=\"length\"", double(m.getRequestsFinishedLength()));
  w.sample("vllm:request_success_total", "finished_reason=\"abort\"", double(m.getRequestsAborted()));
  w.sample("vllm:request_success_total", "finished_reason=\"error\"", double(m.getRequestsErrored()));
  w.histogram("vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.",
              m.getTimeToFirstToken());
  w.histogram("vllm:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.",
              m.getInterTokenLatency());
  w.histogram("vllm:e2e_request_latency_seconds", "Histogram of e2e request latency in seconds.",
              m.getE2eRequestLatency());
  w.histogram("vllm:request_queue_time_seconds", "Histogram of time spent in WAITING phase for request.",
              m.getRequestQueueTime());
  return std::move(w.out);
}

void handle_metrics(const std::shared_ptr<FrontendShared>& shared, const http::ResponderPtr& out) {
  auto sched = shared->scheduler;
  std::string model = shared->opts.served_model_name;
  if (!sched) return out->respond(503, "text/plain", "the scheduler is not running\n");
  // The actor lives until its one request is answered or times out.
  sched.home_system().spawn([sched, model, out](caf::event_based_actor* self) {
    self->request(sched, std::chrono::seconds(5), metrics_atom::value)
      .then([out, model](const MetricsMsg& m) {
              out->respond(200, "text/plain; version=0.0.4; charset=utf-8", render_prometheus(*m.view(), model));
            },
            [out](caf::error&) { out->respond(503, "text/plain", "the scheduler did not answer\n"); });
  });
}

}  // namespace troupe
