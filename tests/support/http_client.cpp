// Test-only HTTP client. Each call owns a private io_context and drives it with run_one_for() against a
// deadline, so a misbehaving server fails the test instead of hanging it (asio's synchronous calls
// ignore SO_RCVTIMEO).
#include <utility>  // must precede asio with Boost 1.74 + g++12 + C++20

#include "tests/support/http_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <deque>
#include <functional>
#include <stdexcept>

namespace troupe::testing {
namespace {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
using Clock = std::chrono::steady_clock;

Clock::time_point deadline_in(double s) {
  return Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

std::string lower(std::string out) {
  // by value: callers pass Beast's boost::string_view converted
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

struct Conn {
  asio::io_context ioc;
  tcp::socket sock{ioc};  // after ioc: destroyed first
  boost::beast::flat_buffer buf;

  // Runs handlers until pred() holds or the deadline passes (then false; the operation stays pending).
  template <class Pred>
  bool run_until(Pred pred, Clock::time_point deadline) {
    while (!pred()) {
      auto now = Clock::now();
      if (now >= deadline) return false;
      if (ioc.stopped()) ioc.restart();
      ioc.run_one_for(deadline - now);
    }
    return true;
  }

  // Waits for an operation whose handler sets `done`; on timeout cancels it (its handler refers to the
  // caller's locals, so it must have run before we return) and throws.
  void await(const bool& done, const error_code& ec, Clock::time_point deadline, const char* what) {
    if (!run_until([&] { return done; }, deadline)) {
      error_code ignored;
      sock.close(ignored);
      run_until([&] { return done; }, deadline_in(5));
      throw std::runtime_error(std::string(what) + ": timed out");
    }
    if (ec) throw std::runtime_error(std::string(what) + ": " + ec.message());
  }

  void connect(const std::string& host, std::uint16_t port, Clock::time_point deadline) {
    tcp::resolver resolver(ioc);
    auto eps = resolver.resolve(host, std::to_string(port));
    bool done = false;
    error_code ec;
    asio::async_connect(sock, eps, [&](error_code e, const tcp::endpoint&) { ec = e, done = true; });
    await(done, ec, deadline, "connect");
  }

  void write_raw(const std::string& bytes, Clock::time_point deadline) {
    bool done = false;
    error_code ec;
    asio::async_write(sock, asio::buffer(bytes), [&](error_code e, std::size_t) { ec = e, done = true; });
    await(done, ec, deadline, "write");
  }
};

std::map<std::string, std::string> header_map(const bhttp::response_header<>& h) {
  std::map<std::string, std::string> out;
  for (const auto& f : h) out[lower(std::string(f.name_string()))] = std::string(f.value());
  return out;
}

}  // namespace

HttpResponse http_request(const std::string& host, std::uint16_t port, const std::string& method,
                          const std::string& target, const std::string& body,
                          const std::map<std::string, std::string>& headers, double timeout_s) {
  const auto deadline = deadline_in(timeout_s);
  Conn c;
  c.connect(host, port, deadline);

  bhttp::request<bhttp::string_body> req;
  req.method_string(method);
  req.target(target);
  req.version(11);
  req.set(bhttp::field::host, host);
  req.set(bhttp::field::connection, "close");
  for (const auto& [k, v] : headers) req.set(k, v);
  req.body() = body;
  if (!body.empty() || method == "POST" || method == "PUT") req.prepare_payload();

  bool done = false;
  error_code ec;
  bhttp::async_write(c.sock, req, [&](error_code e, std::size_t) { ec = e, done = true; });
  c.await(done, ec, deadline, "write request");

  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(std::uint64_t{1} << 34);
  parser.header_limit(1u << 20);
  done = false;
  bhttp::async_read(c.sock, c.buf, parser, [&](error_code e, std::size_t) { ec = e, done = true; });
  c.await(done, ec, deadline, "read response");

  HttpResponse out;
  auto& msg = parser.get();
  out.status = msg.result_int();
  out.headers = header_map(msg.base());
  out.body = std::move(msg.body());
  return out;
}

std::vector<std::string> sse_events(const std::string& body) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos < body.size()) {
    auto eol = body.find('\n', pos);
    if (eol == std::string::npos) eol = body.size();
    std::string line = body.substr(pos, eol - pos);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.rfind("data:", 0) == 0) {
      line.erase(0, 5);
      if (!line.empty() && line.front() == ' ') line.erase(0, 1);
      out.push_back(std::move(line));
    }
    pos = eol + 1;
  }
  return out;
}

std::string raw_exchange(const std::string& host, std::uint16_t port, const std::string& bytes, double timeout_s,
                         bool half_close) {
  const auto read_deadline = deadline_in(timeout_s);
  const auto io_deadline = deadline_in(std::max(timeout_s, 5.0));  // connect/write even with timeout 0
  Conn c;
  c.connect(host, port, io_deadline);
  if (!bytes.empty()) c.write_raw(bytes, io_deadline);
  if (half_close) c.sock.shutdown(tcp::socket::shutdown_send);

  std::string got;
  char chunk[16384];
  bool done = false, pending = false;
  std::function<void()> read_more = [&] {
    pending = true;
    c.sock.async_read_some(asio::buffer(chunk), [&](error_code e, std::size_t n) {
      pending = false;
      got.append(chunk, n);
      if (e) done = true;  // EOF, reset or cancelled
      else read_more();
    });
  };
  read_more();
  c.run_until([&] { return done; }, read_deadline);
  error_code ignored;
  c.sock.close(ignored);
  c.run_until([&] { return !pending; }, deadline_in(5));  // the handler uses locals: let it finish
  return got;
}

struct HttpStream::Impl {
  Conn c;
  bhttp::response_parser<bhttp::string_body> parser;
  std::function<std::size_t(std::uint64_t, boost::string_view, error_code&)> on_chunk;
  std::deque<std::string> chunks;
  std::size_t body_taken = 0;  // for a non-chunked body: how much of parser's body was handed out
  bool pending = false, done = false;

  void read_some() {
    if (pending || done) return;
    pending = true;
    bhttp::async_read_some(c.sock, c.buf, parser, [this](error_code ec, std::size_t) {
      pending = false;
      if (ec || parser.is_done()) done = true;
      auto& b = parser.get().body();  // non-chunked bodies land here; chunked ones go to on_chunk
      if (b.size() > body_taken) {
        chunks.push_back(b.substr(body_taken));
        body_taken = b.size();
      }
    });
  }

  template <class Pred>
  bool pump(Pred pred, Clock::time_point deadline) {
    while (!pred() && !done) {
      read_some();
      if (!c.run_until([&] { return !pending; }, deadline)) return false;
    }
    return true;
  }
};

HttpStream::HttpStream(const std::string& host, std::uint16_t port, const std::string& method,
                       const std::string& target, const std::string& body)
    : impl_(std::make_unique<Impl>()) {
  auto& im = *impl_;
  im.parser.body_limit(std::uint64_t{1} << 34);
  // Beast keeps a reference to the callback: it lives in Impl, as long as the parser.
  im.on_chunk = [&im](std::uint64_t, boost::string_view data, error_code&) {
    im.chunks.emplace_back(data.data(), data.size());
    return data.size();
  };
  im.parser.on_chunk_body(im.on_chunk);
  const auto deadline = deadline_in(30);
  im.c.connect(host, port, deadline);
  std::string req = method + " " + target + " HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n";
  if (!body.empty() || method == "POST") req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  im.c.write_raw(req + "\r\n" + body, deadline);
}

HttpStream::~HttpStream() { close(); }

int HttpStream::status(double timeout_s) {
  auto& im = *impl_;
  if (!im.pump([&] { return im.parser.is_header_done(); }, deadline_in(timeout_s)) ||
      !im.parser.is_header_done())
    throw std::runtime_error("HttpStream: no response header");
  return im.parser.get().result_int();
}

std::map<std::string, std::string> HttpStream::headers(double timeout_s) {
  status(timeout_s);
  return header_map(impl_->parser.get().base());
}

std::optional<std::string> HttpStream::next_chunk(double timeout_s) {
  auto& im = *impl_;
  timed_out_ = false;
  if (!im.pump([&] { return !im.chunks.empty(); }, deadline_in(timeout_s))) timed_out_ = true;
  if (im.chunks.empty()) return std::nullopt;
  std::string out = std::move(im.chunks.front());
  im.chunks.pop_front();
  return out;
}

void HttpStream::close() {
  if (!impl_) return;
  error_code ignored;
  impl_->c.sock.close(ignored);
  impl_->done = true;
}

}  // namespace troupe::testing
