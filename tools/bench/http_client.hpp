#pragma once
// An asynchronous HTTP/1.1 client for driving many streamed requests from a thread or two: one
// io_context, one connection per in-flight request, idle keep-alive connections reused. Beast and
// Asio stay inside http_client.cpp (one translation unit: they take long to compile).
#include "tools/bench/sse.hpp"  // Clock

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace troupe::bench {

struct HttpHandlers {
  // Body bytes of a 200 response as they arrive (de-chunked), stamped when the read completed.
  // Runs on an I/O thread; calls for one request never overlap.
  std::function<void(std::string_view bytes, Clock::time_point at)> on_body;
  // Exactly once per request: the status (0 when none came), the body of a non-200 response, and a
  // transport error ("" when the exchange completed).
  std::function<void(int status, std::string body, std::string error)> on_done;
};

class HttpClient {
 public:
  // Resolves host at once (throws std::runtime_error when it cannot) and starts io_threads threads.
  HttpClient(const std::string& host, std::uint16_t port, int io_threads = 1);
  ~HttpClient();  // stops the threads; requests still running are dropped without on_done
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Thread-safe; returns at once. A POST carries `body` as application/json.
  void request(const std::string& method, const std::string& target, std::string body, HttpHandlers h);

  struct Reply {
    int status = 0;
    std::string body;
    std::string error;  // transport error or timeout
  };
  // Blocks the caller (never call it from a handler) until the whole response or the timeout.
  Reply request_sync(const std::string& method, const std::string& target, const std::string& body,
                     double timeout_s);

  std::size_t connections_opened() const;

  struct Impl;  // defined in http_client.cpp (public so its exchange objects there can name it)

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace troupe::bench
