#pragma once
// A small synchronous HTTP/1.1 client for tests (Beast stays in http_client.cpp). Every call has a
// deadline: a server that hangs makes a test fail, never hang.
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace troupe::testing {

struct HttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;                            // de-chunked
};

// One connection per call; throws std::runtime_error on connect/IO failure or timeout.
HttpResponse http_request(const std::string& host, std::uint16_t port, const std::string& method,
                          const std::string& target, const std::string& body = "",
                          const std::map<std::string, std::string>& headers = {}, double timeout_s = 30);

// The payloads of the `data: ` lines of an SSE body, in order.
std::vector<std::string> sse_events(const std::string& body);

// Writes raw bytes (then, with half_close, shuts the sending side), returns everything read until the
// server closes or the timeout passes. For malformed-request and keep-alive tests.
std::string raw_exchange(const std::string& host, std::uint16_t port, const std::string& bytes,
                         double timeout_s, bool half_close = false);

// Sends one request and reads the response incrementally: status() waits for the header,
// next_chunk() returns body chunks as they arrive, close() drops the connection mid-stream.
class HttpStream {
 public:
  HttpStream(const std::string& host, std::uint16_t port, const std::string& method, const std::string& target,
             const std::string& body = "");
  ~HttpStream();
  HttpStream(const HttpStream&) = delete;
  HttpStream& operator=(const HttpStream&) = delete;

  int status(double timeout_s = 30);  // throws on timeout
  std::map<std::string, std::string> headers(double timeout_s = 30);
  // The next chunk of body; nullopt at the end of the body, on a closed connection, or on timeout
  // (then timed_out() is true and a later call may still succeed).
  std::optional<std::string> next_chunk(double timeout_s);
  bool timed_out() const { return timed_out_; }
  void close();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  bool timed_out_ = false;
};

}  // namespace troupe::testing
