// libFuzzer target: the OpenAI request parsers must answer every input with a request or an ApiError,
// never crash, hang or leak.
#include "actors/http_frontend/openai_request.hpp"

#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string body(reinterpret_cast<const char*>(data), size);
  auto a = troupe::parse_generation_request(body, troupe::ApiKind::completion);
  auto b = troupe::parse_generation_request(body, troupe::ApiKind::chat);
  auto c = troupe::parse_tokenize_request(body);
  auto d = troupe::parse_detokenize_request(body);
  if (auto* e = std::get_if<troupe::ApiError>(&a)) (void)e->json();
  (void)b;
  (void)c;
  (void)d;
  return 0;
}
