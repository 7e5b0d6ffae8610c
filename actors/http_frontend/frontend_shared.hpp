#pragma once
// State the frontend's two worlds share: asio threads (the HTTP handlers) create request contexts and
// submit; the frontend actor routes token events to them. The registry's mutex is the hand-over point.
// A context is touched only on its connection's strand (Responder::run): the handler creates it there,
// and the actor hands each event to that strand rather than formatting it itself, so one step's
// requests are formatted in parallel by the HTTP threads while each request keeps its event order.
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
  struct Live {
    std::shared_ptr<RequestContext> ctx;
    http::ResponderPtr out;  // its connection: the context runs on this strand
  };
  std::unordered_map<std::uint64_t, Live> live;  // by engine request id (n > 1: n ids, one context)
  std::string health_message = "starting";  // under mu
  // Per streamed token: the actor's routing (lookup, hand-over to the strand), the formatting work on the
  // strand (detokenize, stop strings, JSON, queue the chunk), and scheduler send -> chunk queued.
  ShardedLatencyLog route_cost;
  ShardedLatencyLog token_cost;
  ShardedLatencyLog token_latency;
};

// Asks the scheduler to stop engine request `id` (its blocks go back to the pool).
void send_abort(FrontendShared& sh, std::uint64_t id, const char* why);

// Routes one HTTP request (runs on an asio thread; never blocks).
void handle_http(const std::shared_ptr<FrontendShared>& shared, http::Request req, http::ResponderPtr out);

}  // namespace troupe
