// The only translation unit of the benchmark client that includes Beast/Asio.
#include <utility>  // must precede asio with Boost 1.74 + g++12 + C++20

#include "tools/bench/http_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>

#include <atomic>
#include <cstdlib>
#include <future>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <vector>

namespace troupe::bench {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

struct HttpClient::Impl {
  asio::io_context ioc;
  asio::executor_work_guard<asio::io_context::executor_type> guard{ioc.get_executor()};
  tcp::resolver::results_type endpoints;
  std::string host_header;
  std::atomic<std::size_t> opened{0};
  std::mutex mu;
  std::vector<std::unique_ptr<tcp::socket>> idle;  // declared after ioc: closed before it goes
  std::vector<std::thread> threads;

  std::unique_ptr<tcp::socket> take_idle() {
    std::lock_guard lk(mu);
    if (idle.empty()) return nullptr;
    auto s = std::move(idle.back());
    idle.pop_back();
    return s;
  }
  void give_back(std::unique_ptr<tcp::socket> s) {
    std::lock_guard lk(mu);
    idle.push_back(std::move(s));
  }
};

namespace {

// One request/response. Every operation on its socket runs on the socket's strand, so several I/O
// threads never touch one connection at once.
class Exchange : public std::enable_shared_from_this<Exchange> {
 public:
  Exchange(std::shared_ptr<HttpClient::Impl> im, std::string wire, HttpHandlers h)
    : im_(std::move(im)), wire_(std::move(wire)), h_(std::move(h)) {}

  void start() {
    sock_ = im_->take_idle();
    reused_ = sock_ != nullptr;
    if (reused_) write();
    else connect();
  }

 private:
  void connect() {
    sock_ = std::make_unique<tcp::socket>(asio::make_strand(im_->ioc));
    im_->opened.fetch_add(1, std::memory_order_relaxed);
    asio::async_connect(*sock_, im_->endpoints, [self = shared_from_this()](error_code ec, const tcp::endpoint&) {
      if (ec) return self->done("connect: " + ec.message());
      error_code ignored;
      self->sock_->set_option(tcp::no_delay(true), ignored);
      self->write();
    });
  }

  void write() {
    asio::async_write(*sock_, asio::buffer(wire_), [self = shared_from_this()](error_code ec, std::size_t) {
      if (ec) return self->retry_or_fail("write: " + ec.message());
      self->start_read();
    });
  }

  // A kept-alive connection the server has closed meanwhile fails before any answer: try a fresh one.
  void retry_or_fail(const std::string& why) {
    if (reused_ && !answered_) {
      reused_ = false;
      error_code ignored;
      sock_->close(ignored);
      return connect();
    }
    done(why);
  }

  void start_read() {
    parser_.emplace();
    parser_->body_limit(std::uint64_t{1} << 40);  // streams are long; no practical limit
    // Beast keeps a reference to the callback: it lives in this object, as long as the parser.
    on_chunk_ = [this](std::uint64_t, boost::string_view data, error_code&) {
      deliver(std::string_view(data.data(), data.size()));
      return data.size();
    };
    parser_->on_chunk_body(on_chunk_);
    read_some();
  }

  void read_some() {
    bhttp::async_read_some(*sock_, buf_, *parser_, [self = shared_from_this()](error_code ec, std::size_t n) {
      self->on_read(ec, n);
    });
  }

  void on_read(error_code ec, std::size_t n) {
    if (n > 0) answered_ = true;
    if (parser_->is_header_done()) status_ = parser_->get().result_int();
    // A body without chunked encoding lands in the parser's string: hand out what is new.
    auto& b = parser_->get().body();
    if (b.size() > body_taken_) {
      deliver(std::string_view(b).substr(body_taken_));
      body_taken_ = b.size();
    }
    if (parser_->is_done()) {
      bool keep = parser_->keep_alive();
      if (keep) im_->give_back(std::move(sock_));
      return done("");
    }
    if (ec == bhttp::error::end_of_stream && parser_->is_header_done() && !parser_->chunked() &&
        !parser_->content_length())
      return done("");  // body delimited by the close
    if (ec) return retry_or_fail("read: " + ec.message());
    read_some();
  }

  void deliver(std::string_view data) {
    if (data.empty()) return;
    if (parser_->get().result_int() == 200) {
      if (h_.on_body) h_.on_body(data, Clock::now());
    } else {
      error_body_.append(data);
    }
  }

  void done(const std::string& error) {
    if (finished_) return;
    finished_ = true;
    if (sock_) {
      error_code ignored;
      sock_->close(ignored);
    }
    if (h_.on_done) h_.on_done(status_, std::move(error_body_), error);
  }

  std::shared_ptr<HttpClient::Impl> im_;
  std::string wire_;
  HttpHandlers h_;
  std::unique_ptr<tcp::socket> sock_;
  boost::beast::flat_buffer buf_;
  std::optional<bhttp::response_parser<bhttp::string_body>> parser_;
  std::function<std::size_t(std::uint64_t, boost::string_view, error_code&)> on_chunk_;
  std::string error_body_;
  std::size_t body_taken_ = 0;
  int status_ = 0;
  bool reused_ = false, answered_ = false, finished_ = false;
};

}  // namespace

HttpClient::HttpClient(const std::string& host, std::uint16_t port, int io_threads)
  : impl_(std::make_shared<Impl>()) {
  tcp::resolver resolver(impl_->ioc);
  error_code ec;
  impl_->endpoints = resolver.resolve(host, std::to_string(port), ec);
  if (ec) throw std::runtime_error("cannot resolve " + host + ": " + ec.message());
  impl_->host_header = host + ":" + std::to_string(port);
  for (int i = 0; i < std::max(1, io_threads); ++i) impl_->threads.emplace_back([im = impl_.get()] { im->ioc.run(); });
}

HttpClient::~HttpClient() {
  impl_->guard.reset();
  impl_->ioc.stop();
  for (auto& t : impl_->threads) t.join();
  std::lock_guard lk(impl_->mu);
  impl_->idle.clear();
}

void HttpClient::request(const std::string& method, const std::string& target, std::string body, HttpHandlers h) {
  std::string wire = method + " " + target + " HTTP/1.1\r\nHost: " + impl_->host_header +
                     "\r\nUser-Agent: troupe-bench\r\nAccept: */*\r\n";
  if (const char* key = std::getenv("OPENAI_API_KEY"); key && *key)
    wire += std::string("Authorization: Bearer ") + key + "\r\n";
  if (method != "GET") wire += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  wire += "\r\n";
  wire += body;
  auto ex = std::make_shared<Exchange>(impl_, std::move(wire), std::move(h));
  asio::post(impl_->ioc, [ex] { ex->start(); });
}

HttpClient::Reply HttpClient::request_sync(const std::string& method, const std::string& target,
                                           const std::string& body, double timeout_s) {
  struct State {
    std::string body;
    std::promise<Reply> done;
  };
  auto st = std::make_shared<State>();
  auto fut = st->done.get_future();
  request(method, target, body,
          {[st](std::string_view b, Clock::time_point) { st->body.append(b); },
           [st](int status, std::string err_body, std::string error) {
             st->done.set_value({status, status == 200 ? std::move(st->body) : std::move(err_body), std::move(error)});
           }});
  if (fut.wait_for(std::chrono::duration<double>(timeout_s)) != std::future_status::ready)
    return {0, "", "timed out after " + std::to_string(timeout_s) + " s"};
  return fut.get();
}

std::size_t HttpClient::connections_opened() const { return impl_->opened.load(); }

}  // namespace troupe::bench
