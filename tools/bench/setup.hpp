#pragma once
// What both benchmark modes need before the first request: the server's address, a client, the model
// name (asked from /v1/models when not given) and, when one can be found, the tokenizer.
#include "tools/bench/args.hpp"
#include "tools/bench/http_client.hpp"
#include "model/tokenizer/tokenizer.hpp"

#include <memory>
#include <optional>
#include <string>

namespace troupe::bench {

struct Setup {
  Url url;
  std::string api_target;  // url.path + endpoint
  std::unique_ptr<HttpClient> client;
  std::string model_id;    // --model, or the first model the server lists
  std::string model_name;  // what requests carry in "model": --served-model-name, else model_id
  std::optional<Tokenizer> tokenizer;
  std::optional<std::string> tokenizer_id;
};

// Throws std::runtime_error with a message for the user.
Setup make_setup(const BenchArgs& a);

// The request body vLLM's openai / openai-chat request functions send (streamed, usage included).
std::string make_payload(bool chat, const std::string& model, const std::string& prompt, int max_tokens,
                         bool ignore_eos);

// The first model of /v1/models: its id and, when the server says where it was loaded from, its root.
// Throws std::runtime_error.
std::pair<std::string, std::string> first_model(HttpClient& c, const std::string& base_path);

// Lets the process hold one socket per in-flight request (1100 at once needs more than 1024).
void raise_open_file_limit();

}  // namespace troupe::bench
