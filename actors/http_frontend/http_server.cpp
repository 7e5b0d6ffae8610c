// The only translation unit that includes Beast/Asio for the server (compile time on 2 cores matters).
//
// Design: one Session per connection, all of its state touched only on its strand. A single read loop
// (async_read_some into a flat_buffer) runs for the whole life of the connection: while a request is being
// read its bytes are fed to a Beast request_parser by hand; while a response is pending or streaming the
// same loop doubles as disconnect detection (EOF or an error means the client is gone) and keeps any
// pipelined bytes in the buffer for later. So there is never a second read to cancel, and requests on a
// connection are parsed strictly one after the other.
#include <utility>  // must precede asio with Boost 1.74 + g++12 + C++20

#include "actors/http_frontend/http_server.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <deque>
#include <future>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <unordered_map>
#include <vector>

namespace troupe::http {
namespace {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

constexpr std::size_t kReadChunk = 16 * 1024;
constexpr double kLingerSeconds = 2.0;  // after a final response: drain input so the close does not RST it

std::string json_escape(const std::string& s) {
  std::string out;
  out.reserve(s.size() + 2);
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out;
}

std::string lower(std::string out) {
  // by value: callers pass Beast's boost::string_view converted
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Header values come from callers; a CR or LF in them would let a value inject headers.
bool header_safe(const std::string& s) { return s.find_first_of("\r\n") == std::string::npos; }

std::string status_line(int status) {
  auto reason = bhttp::obsolete_reason(static_cast<bhttp::status>(status));
  return "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason.data(), reason.size()) + "\r\n";
}

class Session;

// State shared by the server, its sessions and every live Responder. Held by shared_ptr so a Responder
// that outlives the Server (kept by an actor) still points at a valid io_context.
struct Core {
  ServerOptions opts;
  Handler handler;
  asio::io_context ioc;
  std::atomic<bool> stopped{false};
  std::mutex mu;
  std::unordered_map<Session*, std::weak_ptr<Session>> sessions;

  Core(ServerOptions o, Handler h) : opts(std::move(o)), handler(std::move(h)), ioc(std::max(1, opts.threads)) {}
  bool add(const std::shared_ptr<Session>& s);
  void remove(Session* s) {
    std::lock_guard lock(mu);
    sessions.erase(s);
  }
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(std::shared_ptr<Core> core, tcp::socket sock)
      : core_(std::move(core)), sock_(std::move(sock)), timer_(sock_.get_executor()) {}
  ~Session() { core_->remove(this); }  // normally close_now() did this already

  asio::any_io_executor executor() { return sock_.get_executor(); }
  Core& core() { return *core_; }

  void start() {
    error_code ec;
    sock_.set_option(tcp::no_delay(true), ec);  // SSE chunks must not wait for Nagle
    new_parser();
    arm_timer(core_->opts.read_timeout_s, Timeout::kRead);
    do_read();
  }

  // --- Responder entry points; all run on the strand. `gen` names the request a Responder belongs to.
  void respond(std::uint64_t gen, int status, const std::string& content_type, std::string body,
               const std::map<std::string, std::string>& headers) {
    if (!current(gen) || started_) return;
    started_ = true;
    std::string head = status_line(status) + common_headers() + "Content-Type: " + content_type +
                       "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
    for (const auto& [k, v] : headers)
      if (header_safe(k) && header_safe(v)) head += k + ": " + v + "\r\n";
    head += "\r\n";
    enqueue(std::move(head));
    if (!head_request_ && !body.empty()) enqueue(std::move(body));
    finish_response();
  }

  void begin_stream(std::uint64_t gen, int status, const std::string& content_type) {
    if (!current(gen) || started_) return;
    started_ = true;
    streaming_ = true;
    // HTTP/1.0 knows no chunked encoding: there the stream is raw and ends with the connection.
    chunked_ = !http10_;
    if (!chunked_) keep_alive_ = false;
    std::string head = status_line(status) + common_headers() + "Content-Type: " + content_type +
                       "\r\nCache-Control: no-cache\r\n";
    head += chunked_ ? "Transfer-Encoding: chunked\r\n\r\n" : "\r\n";
    enqueue(std::move(head));
  }

  void write_chunk(std::uint64_t gen, std::string chunk) {
    // An empty chunk would be read as the terminating one: skip it.
    if (!current(gen) || !streaming_ || chunk.empty() || head_request_) return;
    if (!chunked_) return enqueue(std::move(chunk));
    char size[32];
    std::snprintf(size, sizeof size, "%zx\r\n", chunk.size());
    enqueue(size + std::move(chunk) + "\r\n");
  }

  void end(std::uint64_t gen) {
    if (!current(gen)) return;
    if (!started_) return respond(gen, 200, "text/plain", "", {});  // end() without a body: empty 200
    if (chunked_ && !head_request_) enqueue("0\r\n\r\n");
    finish_response();
  }

  void set_on_disconnect(std::uint64_t gen, std::function<void()> cb) {
    if (gen != gen_ || !cb) return;
    if (state_ == State::kHandling) {
      on_disconnect_ = std::move(cb);
    } else if (abandoned_gen_ == gen) {
      run_callback(cb);  // already gone: run at once
    }
  }

  // Closes the socket; if a response was still owed, the request counts as abandoned.
  void close_now() {
    if (state_ == State::kClosed) return;
    const bool owed = state_ == State::kHandling;
    state_ = State::kClosed;
    error_code ec;
    sock_.shutdown(tcp::socket::shutdown_both, ec);
    sock_.close(ec);
    timer_.cancel();
    core_->remove(this);
    if (owed) {
      abandoned_gen_ = gen_;
      auto cb = std::move(on_disconnect_);
      on_disconnect_ = nullptr;
      if (cb) run_callback(cb);
    }
  }

 private:
  // kReading: parsing a request. kHandling: the handler owes a response (pending or streaming).
  // kDraining: the response has ended, its bytes may still be in flight. kClosing: final response sent,
  // send side shut, input discarded until EOF or the linger timer. kClosed: socket closed.
  enum class State { kReading, kHandling, kDraining, kClosing, kClosed };
  enum class Timeout { kRead, kIdle, kLinger };

  bool current(std::uint64_t gen) const { return gen == gen_ && state_ == State::kHandling; }

  std::string common_headers() const {
    return std::string("Server: troupe\r\nConnection: ") + (keep_alive_ ? "keep-alive" : "close") + "\r\n";
  }

  static void run_callback(const std::function<void()>& cb) {
    try {
      cb();
    } catch (...) {
      // A throwing user callback must not take the io thread down.
    }
  }

  void new_parser() {
    parser_.emplace();
    parser_->eager(true);
    parser_->header_limit(static_cast<std::uint32_t>(
        std::min<std::size_t>(core_->opts.max_header_bytes, UINT32_MAX)));
    parser_->body_limit(static_cast<std::uint64_t>(core_->opts.max_body_bytes));
    request_started_ = false;
  }

  // Bytes buffered beyond the current request (pipelining) are capped; past the cap reading pauses,
  // which also pauses disconnect detection -- only a client that floods pipelined requests sees that.
  std::size_t buffer_cap() const { return core_->opts.max_header_bytes + 256 * 1024; }

  void do_read() {
    if (reading_ || state_ == State::kClosed) return;
    if ((state_ == State::kHandling || state_ == State::kDraining) && buf_.size() >= buffer_cap()) return;
    reading_ = true;
    sock_.async_read_some(buf_.prepare(kReadChunk),
                          [self = shared_from_this()](error_code ec, std::size_t n) { self->on_read(ec, n); });
  }

  void on_read(error_code ec, std::size_t n) {
    reading_ = false;
    if (state_ == State::kClosed) return;
    if (ec) return on_peer_gone(ec);
    buf_.commit(n);
    if (state_ == State::kClosing) buf_.consume(buf_.size());
    if (state_ == State::kReading) parse();
    do_read();
  }

  void on_peer_gone(error_code ec) {
    // A half-close after the response has ended is harmless: finish writing, then close.
    if (state_ == State::kDraining && ec == asio::error::eof) {
      keep_alive_ = false;
      return;
    }
    close_now();  // fires on_disconnect if the response is still owed
  }

  void parse() {
    if (buf_.size() == 0) return;
    if (!request_started_) {
      request_started_ = true;
      arm_timer(core_->opts.read_timeout_s, Timeout::kRead);
    }
    error_code ec;
    while (buf_.size() > 0 && !parser_->is_done()) {
      std::size_t used = parser_->put(buf_.data(), ec);
      buf_.consume(used);
      if (ec == bhttp::error::need_more) {
        ec = {};
        break;
      }
      if (ec || used == 0) break;
    }
    if (ec == bhttp::error::body_limit) return reject(413, "request body too large", "invalid_request_error");
    if (ec == bhttp::error::header_limit) return reject(431, "request headers too large", "invalid_request_error");
    if (ec) return reject(400, "malformed HTTP request: " + ec.message(), "invalid_request_error");
    if (parser_->is_done()) dispatch();
  }

  Request take_request() {
    auto& m = parser_->get();
    Request req;
    req.method = std::string(m.method_string());
    req.target = std::string(m.target());
    auto q = req.target.find('?');
    req.path = req.target.substr(0, q);
    if (q != std::string::npos) req.query = req.target.substr(q + 1);
    for (const auto& f : m) {
      auto& slot = req.headers[lower(std::string(f.name_string()))];
      slot += slot.empty() ? std::string(f.value()) : ", " + std::string(f.value());
    }
    req.body = std::move(m.body());
    keep_alive_ = m.keep_alive() && !core_->stopped;
    http10_ = m.version() < 11;
    head_request_ = m.method() == bhttp::verb::head;
    return req;
  }

  void begin_handling() {
    ++timer_gen_;  // no timeout while the handler owes a response
    timer_.cancel();
    state_ = State::kHandling;
    started_ = streaming_ = false;
    chunked_ = true;
    on_disconnect_ = nullptr;
    ++gen_;
  }

  void dispatch();

  // A protocol error the server answers itself; the connection closes afterwards.
  void reject(int status, const std::string& message, const std::string& type) {
    parser_.reset();
    keep_alive_ = false;
    head_request_ = false;
    begin_handling();
    respond(gen_, status, "application/json", error_json(status, message, type), {});
  }

  void finish_response() {
    state_ = State::kDraining;
    on_disconnect_ = nullptr;  // drops a callback that may hold the Responder (and so this session)
    if (!writing_) after_drain();
  }

  void after_drain() {
    if (!keep_alive_ || core_->stopped) return graceful_close();
    state_ = State::kReading;
    new_parser();
    arm_timer(core_->opts.idle_timeout_s, Timeout::kIdle);
    parse();  // a pipelined request may already be buffered
    do_read();
  }

  void graceful_close() {
    state_ = State::kClosing;
    error_code ec;
    sock_.shutdown(tcp::socket::shutdown_send, ec);
    buf_.consume(buf_.size());
    arm_timer(kLingerSeconds, Timeout::kLinger);
    do_read();
  }

  void enqueue(std::string bytes) {
    out_.push_back(std::move(bytes));
    if (!writing_) do_write();
  }

  void do_write() {
    writing_ = true;
    asio::async_write(sock_, asio::buffer(out_.front()),
                      [self = shared_from_this()](error_code ec, std::size_t) { self->on_write(ec); });
  }

  void on_write(error_code ec) {
    writing_ = false;
    if (state_ == State::kClosed) return out_.clear();
    if (ec) return close_now();  // a failed write means the client is gone
    out_.pop_front();
    if (!out_.empty()) return do_write();
    if (state_ == State::kDraining) after_drain();
  }

  void arm_timer(double seconds, Timeout kind) {
    const auto gen = ++timer_gen_;
    timer_.expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(std::max(0.0, seconds))));
    timer_.async_wait([self = shared_from_this(), gen, kind](error_code ec) {
      if (!ec && gen == self->timer_gen_) self->on_timeout(kind);
    });
  }

  void on_timeout(Timeout kind) {
    if (kind == Timeout::kLinger) return close_now();
    if (state_ != State::kReading) return;
    // An idle keep-alive connection closes quietly; a request that began but did not finish (or a new
    // connection that sent nothing) gets a 408 first.
    if (kind == Timeout::kIdle) return close_now();
    reject(408, "request not received in time", "timeout_error");
  }

  std::shared_ptr<Core> core_;  // first: outlives the socket and timer that use its io_context
  tcp::socket sock_;
  asio::steady_timer timer_;
  boost::beast::flat_buffer buf_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::deque<std::string> out_;
  std::function<void()> on_disconnect_;
  State state_ = State::kReading;
  std::uint64_t gen_ = 0;            // requests dispatched so far; names the current one
  std::uint64_t abandoned_gen_ = 0;  // the request whose client went away before it was answered
  std::uint64_t timer_gen_ = 0;      // stale timer completions compare unequal and do nothing
  bool reading_ = false, writing_ = false;
  bool request_started_ = false, keep_alive_ = true, http10_ = false, head_request_ = false;
  bool started_ = false, streaming_ = false, chunked_ = true;
};

// Every call posts onto the session's strand, so any thread may use it. Holding the session by
// shared_ptr keeps it alive as long as the caller keeps the Responder (a weak_ptr lost streams).
class SessionResponder final : public Responder {
 public:
  SessionResponder(std::shared_ptr<Session> s, std::uint64_t gen) : s_(std::move(s)), gen_(gen) {}

  void respond(int status, std::string content_type, std::string body,
               std::map<std::string, std::string> headers) override {
    post([s = s_, g = gen_, status, ct = std::move(content_type), b = std::move(body),
          h = std::move(headers)]() mutable { s->respond(g, status, ct, std::move(b), h); });
  }
  // The stream calls come mostly from run() callbacks already on the strand: dispatch runs them in place
  // there (no second trip through the queue) and posts them from any other thread.
  void begin_stream(int status, std::string content_type) override {
    dispatch([s = s_, g = gen_, status, ct = std::move(content_type)] { s->begin_stream(g, status, ct); });
  }
  void write(std::string chunk) override {
    dispatch([s = s_, g = gen_, c = std::move(chunk)]() mutable { s->write_chunk(g, std::move(c)); });
  }
  void end() override {
    dispatch([s = s_, g = gen_] { s->end(g); });
  }
  void on_disconnect(std::function<void()> cb) override {
    post([s = s_, g = gen_, cb = std::move(cb)]() mutable { s->set_on_disconnect(g, std::move(cb)); });
  }
  void run(std::function<void()> fn) override { post(std::move(fn)); }

 private:
  template <class F>
  void post(F&& f) {
    // After stop() nothing runs the io_context any more; a queued handler would only pin the session.
    if (s_->core().stopped) return;
    asio::post(s_->executor(), std::forward<F>(f));
  }
  template <class F>
  void dispatch(F&& f) {
    if (s_->core().stopped) return;
    asio::dispatch(s_->executor(), std::forward<F>(f));
  }

  std::shared_ptr<Session> s_;
  std::uint64_t gen_;
};

void Session::dispatch() {
  Request req = take_request();
  parser_.reset();
  begin_handling();
  auto responder = std::make_shared<SessionResponder>(shared_from_this(), gen_);
  try {
    core_->handler(std::move(req), responder);
  } catch (const std::exception& e) {
    respond(gen_, 500, "application/json", error_json(500, e.what(), "server_error"), {});
  } catch (...) {
    respond(gen_, 500, "application/json", error_json(500, "handler failed", "server_error"), {});
  }
}

bool Core::add(const std::shared_ptr<Session>& s) {
  std::lock_guard lock(mu);
  if (stopped) return false;  // stop() already took its snapshot
  sessions.emplace(s.get(), s);
  return true;
}

}  // namespace

std::string error_json(int status, const std::string& message, const std::string& type) {
  return "{\"error\":{\"message\":\"" + json_escape(message) + "\",\"type\":\"" + json_escape(type) +
         "\",\"param\":null,\"code\":" + std::to_string(status) + "}}";
}

struct Server::Impl {
  std::shared_ptr<Core> core;  // first: the acceptor below uses its io_context
  tcp::acceptor acceptor;
  asio::steady_timer retry;  // backs off the accept loop after errors such as EMFILE
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::vector<std::thread> threads;
  std::mutex stop_mu;
  bool started = false, joined = false;

  Impl(ServerOptions opts, Handler h)
      : core(std::make_shared<Core>(std::move(opts), std::move(h))),
        acceptor(asio::make_strand(core->ioc)),
        retry(acceptor.get_executor()) {}

  void bind() {
    const auto& o = core->opts;
    try {
      tcp::resolver resolver(core->ioc);
      auto results = resolver.resolve(o.host, std::to_string(o.port), tcp::resolver::passive);
      tcp::endpoint ep = results.begin()->endpoint();
      acceptor.open(ep.protocol());
      acceptor.set_option(asio::socket_base::reuse_address(true));
      acceptor.bind(ep);
      acceptor.listen(asio::socket_base::max_listen_connections);
    } catch (const std::exception& e) {
      error_code ec;
      acceptor.close(ec);
      throw std::runtime_error("http server: cannot listen on " + o.host + ":" + std::to_string(o.port) +
                               ": " + e.what());
    }
  }

  void do_accept() {
    acceptor.async_accept(asio::make_strand(core->ioc), [this](error_code ec, tcp::socket sock) {
      if (!acceptor.is_open() || core->stopped) return;
      if (ec) {
        retry.expires_after(std::chrono::milliseconds(50));
        retry.async_wait([this](error_code e) {
          if (!e) do_accept();
        });
        return;
      }
      auto s = std::make_shared<Session>(core, std::move(sock));
      if (core->add(s)) asio::dispatch(s->executor(), [s] { s->start(); });
      do_accept();
    });
  }

  bool on_io_thread() const {
    for (const auto& t : threads)
      if (t.get_id() == std::this_thread::get_id()) return true;
    return false;
  }

  void close_acceptor() {
    error_code ec;
    acceptor.close(ec);
    retry.cancel();
  }
};

Server::Server(ServerOptions opts, Handler handler)
    : impl_(std::make_unique<Impl>(std::move(opts), std::move(handler))) {}

Server::~Server() { stop(); }

std::uint16_t Server::start() {
  std::lock_guard lock(impl_->stop_mu);
  if (impl_->started || impl_->joined) throw std::runtime_error("http server: start() once, before stop()");
  impl_->bind();
  impl_->started = true;
  const auto port = impl_->acceptor.local_endpoint().port();
  impl_->work.emplace(impl_->core->ioc.get_executor());
  impl_->do_accept();
  for (int i = 0; i < std::max(1, impl_->core->opts.threads); ++i)
    impl_->threads.emplace_back([core = impl_->core] { core->ioc.run(); });
  return port;
}

void Server::stop_accepting() {
  auto* impl = impl_.get();
  if (impl->threads.empty() || impl->core->ioc.stopped()) return impl->close_acceptor();
  // From a handler or callback (an io thread) waiting could deadlock a one-thread server: just post.
  if (impl->on_io_thread()) return asio::post(impl->acceptor.get_executor(), [impl] { impl->close_acceptor(); });
  // The acceptor lives on its strand; wait so that no connection is accepted once this returns.
  std::promise<void> done;
  auto fut = done.get_future();
  asio::post(impl->acceptor.get_executor(), [impl, &done] {
    impl->close_acceptor();
    done.set_value();
  });
  fut.wait();
}

void Server::stop() {
  auto& impl = *impl_;
  // Joining would wait on the calling thread itself.
  if (impl.on_io_thread()) throw std::logic_error("http server: stop() called from one of its own threads");
  std::lock_guard lock(impl.stop_mu);
  if (impl.joined) return;
  impl.joined = true;
  auto& core = *impl.core;
  std::vector<std::shared_ptr<Session>> live;
  {
    std::lock_guard l(core.mu);
    core.stopped = true;
    for (auto& [p, w] : core.sessions)
      if (auto s = w.lock()) live.push_back(std::move(s));
  }
  asio::post(impl.acceptor.get_executor(), [&impl] { impl.close_acceptor(); });
  for (auto& s : live) asio::post(s->executor(), [s] { s->close_now(); });
  live.clear();
  impl.work.reset();
  core.ioc.stop();
  for (auto& t : impl.threads)
    if (t.joinable()) t.join();
  // The threads may have quit before running the closes posted above: run what is queued here, so every
  // socket is closed and every pending handler (each holding its session) is released.
  core.ioc.restart();
  core.ioc.poll();
}

std::size_t Server::open_connections() const {
  std::lock_guard lock(impl_->core->mu);
  return impl_->core->sessions.size();
}

}  // namespace troupe::http
