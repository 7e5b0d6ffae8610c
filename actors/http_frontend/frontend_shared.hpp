#pragma once
// State the frontend's two worlds share: asio threads (the HTTP handlers) create request contexts and
// submit; the frontend actor delivers token events to them. The registry's mutex is the hand-over point.
#include "actors/http_frontend/http_server.hpp"
#include "actors/http_frontend/latency_log.hpp"
#include "actors/http_frontend/request_context.hpp"
#include "model/codec/text_codec.hpp"
#include "model/config/generation_config.hpp"
#include "runtime/interfaces.hpp"

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace troupe {

struct FrontendOptions {
  http::ServerOptions server;
  std::string served_model_name = "troupe-default";
  std::string model_root;  // the `model` key, reported by /v1/models
  std::uint32_t max_model_len = 4096;
  std::string reasoning_parser;  // "" or "deepseek_r1"
  GenerationDefaults generation;  // generation_config.json: defaults for the fields a request leaves unset
};

struct FrontendShared {
  FrontendOptions opts;
  std::shared_ptr<const TextCodec> codec;
  scheduler_actor scheduler;
  token_sink_actor sink;  // the frontend actor itself
  std::atomic<bool> healthy{false};
  std::atomic<bool> accepting{true};
  std::atomic<std::uint64_t> next_id{1};
  std::mutex mu;
  std::unordered_map<std::uint64_t, std::shared_ptr<RequestContext>> live;
  std::string health_message = "starting";  // under mu
  // Per streamed token (frontend actor only): the frontend's own work, and scheduler send -> chunk queued.
  LatencyLog token_cost;
  LatencyLog token_latency;
};

// Asks the scheduler to stop engine request `id` (its blocks go back to the pool).
void send_abort(FrontendShared& sh, std::uint64_t id, const char* why);

// Routes one HTTP request (runs on an asio thread; never blocks).
void handle_http(const std::shared_ptr<FrontendShared>& shared, http::Request req, http::ResponderPtr out);

}  // namespace troupe
