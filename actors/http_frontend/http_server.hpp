#pragma once
// A small HTTP/1.1 server on Boost.Beast with its own asio threads. It knows nothing of OpenAI or actors:
// it parses requests, bounds sizes and idle time, and hands each request to one Handler together with a
// Responder through which the answer goes back -- whole, or as a stream of chunks (SSE).
//
// Threading: the Handler runs on an asio thread and must not block. Every Responder method is
// thread-safe and may be called from any thread (CAF actors included): it posts onto the connection's
// strand; no asio object is touched from the caller's thread.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

namespace troupe::http {

struct Request {
  std::string method;                         // "GET", "POST", ...
  std::string target;                         // raw request target, e.g. "/v1/models?x=1"
  std::string path;                           // target without the query
  std::string query;                          // after '?', undecoded
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
};

class Responder {
 public:
  virtual ~Responder() = default;
  // A complete response. Extra headers are added as given.
  virtual void respond(int status, std::string content_type, std::string body,
                       std::map<std::string, std::string> headers = {}) = 0;
  // A streamed response (chunked transfer encoding): begin once, write any number of chunks, end once.
  virtual void begin_stream(int status, std::string content_type) = 0;
  virtual void write(std::string chunk) = 0;
  virtual void end() = 0;
  // `cb` runs once (on an asio thread) if the client goes away before the response has ended:
  // a reset, a closed socket or a half-close seen while the answer is pending or streaming.
  // Set it from the Handler; if the client is already gone it runs at once.
  virtual void on_disconnect(std::function<void()> cb) = 0;
  // Runs `fn` on the connection's strand (an asio thread), after every call made through this Responder
  // before it, and never at the same time as another of the connection's handlers: the caller's work for
  // this response is serialized with the response's I/O. Responder calls made from inside `fn` take
  // effect at once rather than being queued again. The default runs `fn` in the caller's thread (fakes).
  virtual void run(std::function<void()> fn) { fn(); }
};
using ResponderPtr = std::shared_ptr<Responder>;
using Handler = std::function<void(Request, ResponderPtr)>;

struct ServerOptions {
  std::string host = "0.0.0.0";
  std::uint16_t port = 8000;           // 0 = any free port; start() returns the one bound
  int threads = 2;
  std::size_t max_body_bytes = 32u << 20;   // larger bodies get 413
  std::size_t max_header_bytes = 64u << 10; // larger headers get 431
  double idle_timeout_s = 60.0;        // keep-alive connection with no request for this long is closed
  double read_timeout_s = 30.0;        // a request that does not arrive in full within this is answered 408
};

class Server {
 public:
  Server(ServerOptions opts, Handler handler);
  ~Server();  // stop()
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  std::uint16_t start();  // binds and listens (throws std::runtime_error naming host:port on failure)
  void stop_accepting();  // closes the listener; open connections go on
  void stop();            // closes everything and joins the threads (idempotent)
  std::size_t open_connections() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Protocol-level errors that the server answers itself (malformed request 400, 413, 431, 408) use this
// body shape, the same the OpenAI API uses: {"error":{"message":...,"type":...,"param":null,"code":N}}.
std::string error_json(int status, const std::string& message, const std::string& type);

}  // namespace troupe::http
