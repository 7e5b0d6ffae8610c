#pragma once
// GET /metrics: the engine's counters, gauges and latency histograms in Prometheus text format (0.0.4),
// under vLLM's metric names and labels, so dashboards and autoscalers built for vLLM work unchanged.
#include "actors/http_frontend/frontend_shared.hpp"
#include "runtime/schema/messages.hpp"

#include <memory>
#include <string>

namespace troupe {

// Pure: the scheduler's snapshot as exposition text, every sample labelled model_name.
std::string render_prometheus(schema::MetricsSnapshot::Reader m, const std::string& model_name);

// Runs on an asio thread and never blocks it: a short-lived actor asks the scheduler and answers from
// its callback (the responder is thread-safe).
void handle_metrics(const std::shared_ptr<FrontendShared>& shared, const http::ResponderPtr& out);

}  // namespace troupe
