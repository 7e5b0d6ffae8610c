#pragma once
#include "actors/http_frontend/frontend_shared.hpp"

#include <caf/typed_event_based_actor.hpp>

namespace troupe {
// The HTTP frontend: owns the Beast server (its own asio threads) and delivers token events to the
// request contexts. A thin shell; parsing and shaping live in openai_request / request_context.
frontend_actor::behavior_type http_frontend(frontend_actor::pointer self, FrontendOptions opts,
                                            scheduler_actor scheduler, std::shared_ptr<const TextCodec> codec);
}
