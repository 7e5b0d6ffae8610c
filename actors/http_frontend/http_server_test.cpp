#define BOOST_TEST_MODULE http_server
#include <boost/test/unit_test.hpp>

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "actors/http_frontend/http_server.hpp"
#include "tests/support/http_client.hpp"

using namespace troupe::http;
using namespace troupe::testing;
using Clock = std::chrono::steady_clock;

namespace {

const std::string kHost = "127.0.0.1";

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Counts signals from any thread; tests wait for a count with a timeout instead of sleeping.
struct Event {
  std::mutex mu;
  std::condition_variable cv;
  int count = 0;
  void signal() {
    {
      std::lock_guard l(mu);
      ++count;
    }
    cv.notify_all();
  }
  bool wait(int n, double s) {
    std::unique_lock l(mu);
    return cv.wait_for(l, std::chrono::duration<double>(s), [&] { return count >= n; });
  }
  int value() {
    std::lock_guard l(mu);
    return count;
  }
};

ServerOptions test_options() {
  ServerOptions o;
  o.host = kHost;
  o.port = 0;
  o.threads = 2;
  return o;
}

// A toy application: echo, a 100-chunk stream written from another thread, an endless slow stream that
// stops when the client leaves, and a request that is never answered.
struct Fixture {
  Event disconnects, pending_arrived, run_violations;
  std::mutex mu;
  std::vector<std::thread> workers;
  std::vector<ResponderPtr> held;
  std::atomic<bool> stop_workers{false};
  Server server;
  std::uint16_t port;

  explicit Fixture(ServerOptions o = test_options())
      : server(o, [this](Request r, ResponderPtr p) { handle(std::move(r), std::move(p)); }) {
    port = server.start();
  }
  ~Fixture() {
    stop_workers = true;
    for (auto& t : workers) t.join();
    server.stop();
  }

  void spawn(std::function<void()> fn) {
    std::lock_guard l(mu);
    workers.emplace_back(std::move(fn));
  }

  void handle(Request req, ResponderPtr res) {
    if (req.path == "/echo") {
      auto it = req.headers.find("x-test");
      res->respond(200, "text/plain", req.method + " " + req.path + "?" + req.query + "|" + req.body,
                   {{"X-Echo", it == req.headers.end() ? "" : it->second}});
    } else if (req.path == "/stream") {
      res->begin_stream(200, "text/event-stream");
      spawn([res] {
        for (int i = 0; i < 100; ++i) res->write("data: " + std::to_string(i) + "\n\n");
        res->end();
      });
    } else if (req.path == "/runstream") {
      // The frontend's pattern: another thread hands work to the connection's strand with run(); the work
      // writes the chunks. Each callback must run off the caller's thread, in order, one at a time.
      res->begin_stream(200, "text/event-stream");
      spawn([this, res] {
        auto inside = std::make_shared<std::atomic<int>>(0);
        auto caller = std::this_thread::get_id();
        for (int i = 0; i < 200; ++i)
          res->run([this, res, inside, caller, i] {
            if (inside->fetch_add(1) != 0 || std::this_thread::get_id() == caller) run_violations.signal();
            res->write("data: " + std::to_string(i) + "\n\n");
            inside->fetch_sub(1);
          });
        res->run([res] { res->end(); });
      });
    } else if (req.path == "/slowstream") {
      auto gone = std::make_shared<std::atomic<bool>>(false);
      res->on_disconnect([this, gone] {
        *gone = true;
        disconnects.signal();
      });
      res->begin_stream(200, "text/event-stream");
      spawn([this, res, gone] {
        for (int i = 0; i < 3000 && !*gone && !stop_workers; ++i) {
          res->write("data: tick\n\n");
          std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        res->end();
      });
    } else if (req.path == "/pending") {
      res->on_disconnect([this] { disconnects.signal(); });
      std::lock_guard l(mu);
      held.push_back(res);
      pending_arrived.signal();
    } else if (req.path == "/throw") {
      throw std::runtime_error("boom");
    } else {
      res->respond(404, "application/json", error_json(404, "no route", "not_found"));
    }
  }

  // open_connections() drops asynchronously after a client leaves.
  bool wait_connections(std::size_t n, double s) {
    auto t0 = Clock::now();
    while (server.open_connections() != n) {
      if (seconds_since(t0) > s) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return true;
  }
};

std::size_t count_of(const std::string& hay, const std::string& needle) {
  std::size_t n = 0;
  for (auto p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1)) ++n;
  return n;
}

}  // namespace

BOOST_AUTO_TEST_CASE(error_json_is_valid_json) {
  auto j = nlohmann::json::parse(error_json(400, "bad \"x\"\n\x01", "invalid_request_error"));
  BOOST_TEST(j["error"]["message"].get<std::string>() == "bad \"x\"\n\x01");
  BOOST_TEST(j["error"]["type"].get<std::string>() == "invalid_request_error");
  BOOST_TEST(j["error"]["param"].is_null());
  BOOST_TEST(j["error"]["code"].get<int>() == 400);
}

BOOST_AUTO_TEST_CASE(get_post_round_trip_and_keep_alive) {
  Fixture f;
  auto r = http_request(kHost, f.port, "GET", "/echo?a=1", "", {{"X-Test", "hi"}});
  BOOST_TEST(r.status == 200);
  BOOST_TEST(r.body == "GET /echo?a=1|");
  BOOST_TEST(r.headers["server"] == "troupe");
  BOOST_TEST(r.headers["content-length"] == std::to_string(r.body.size()));
  BOOST_TEST(r.headers["x-echo"] == "hi");

  r = http_request(kHost, f.port, "POST", "/echo", "hello");
  BOOST_TEST(r.status == 200);
  BOOST_TEST(r.body == "POST /echo?|hello");

  // Two pipelined requests on one connection: answered in order, the connection kept between them and
  // closed by the server after the second (Connection: close), long before the client's timeout.
  auto t0 = Clock::now();
  std::string out = raw_exchange(kHost, f.port,
                                 "GET /echo?1 HTTP/1.1\r\nHost: x\r\n\r\n"
                                 "POST /echo?2 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                                 "Connection: close\r\n\r\nabc",
                                 10);
  BOOST_TEST(seconds_since(t0) < 5);
  BOOST_TEST(count_of(out, "HTTP/1.1 200 OK\r\n") == 2u);
  auto first = out.find("GET /echo?1|"), second = out.find("POST /echo?2|abc");
  BOOST_TEST(first != std::string::npos);
  BOOST_TEST(second != std::string::npos);
  BOOST_TEST(first < second);
  BOOST_TEST(out.find("Connection: keep-alive") < first);
  BOOST_TEST(f.wait_connections(0, 5));

  // A pipelined request behind a streamed one waits for the whole stream (terminating chunk included).
  out = raw_exchange(kHost, f.port,
                     "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n"
                     "GET /echo?after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                     10);
  auto last_event = out.find("data: 99\n\n"), terminator = out.find("\r\n0\r\n\r\n");
  auto after = out.find("GET /echo?after|");
  BOOST_TEST(last_event != std::string::npos);
  BOOST_TEST(terminator != std::string::npos);
  BOOST_TEST(after != std::string::npos);
  BOOST_TEST(last_event < terminator);
  BOOST_TEST(terminator < after);
}

BOOST_AUTO_TEST_CASE(handler_exception_gives_500_and_unknown_route_404) {
  Fixture f;
  auto r = http_request(kHost, f.port, "GET", "/throw");
  BOOST_TEST(r.status == 500);
  BOOST_TEST(r.body.find("boom") != std::string::npos);
  BOOST_TEST(http_request(kHost, f.port, "GET", "/nope").status == 404);
}

BOOST_AUTO_TEST_CASE(stream_arrives_in_full_and_in_order) {
  Fixture f;
  auto r = http_request(kHost, f.port, "GET", "/stream");
  BOOST_TEST(r.status == 200);
  BOOST_TEST(r.headers["content-type"] == "text/event-stream");
  BOOST_TEST(r.headers["cache-control"] == "no-cache");
  BOOST_TEST(r.headers["transfer-encoding"] == "chunked");
  auto events = sse_events(r.body);
  BOOST_REQUIRE_EQUAL(events.size(), 100u);
  for (int i = 0; i < 100; ++i) BOOST_TEST(events[i] == std::to_string(i));

  // The same through the incremental reader: chunks concatenate to the same 100 events.
  HttpStream s(kHost, f.port, "GET", "/stream");
  BOOST_TEST(s.status() == 200);
  std::string all;
  int chunks = 0;
  while (auto c = s.next_chunk(10)) all += *c, ++chunks;
  BOOST_TEST(!s.timed_out());
  BOOST_TEST(chunks >= 1);
  events = sse_events(all);
  BOOST_REQUIRE_EQUAL(events.size(), 100u);
  for (int i = 0; i < 100; ++i) BOOST_TEST(events[i] == std::to_string(i));
}

// Responder::run: work handed over from another thread runs on the connection's strand, in order, never
// two at once for one connection, and the chunks it writes arrive in that order; eight streams at once.
BOOST_AUTO_TEST_CASE(run_serializes_work_on_the_connection_strand) {
  Fixture f;
  std::vector<std::thread> clients;
  std::atomic<int> good{0};
  for (int c = 0; c < 8; ++c)
    clients.emplace_back([&] {
      auto r = http_request(kHost, f.port, "GET", "/runstream");
      auto events = sse_events(r.body);
      bool ok = r.status == 200 && events.size() == 200;
      for (int i = 0; ok && i < 200; ++i) ok = events[i] == std::to_string(i);
      if (ok) ++good;
    });
  for (auto& t : clients) t.join();
  BOOST_TEST(good.load() == 8);
  BOOST_TEST(f.run_violations.value() == 0);
}

BOOST_AUTO_TEST_CASE(body_over_limit_gets_413) {
  auto o = test_options();
  o.max_body_bytes = 1024;
  Fixture f(o);
  BOOST_TEST(http_request(kHost, f.port, "POST", "/echo", std::string(1000, 'x')).status == 200);
  auto r = http_request(kHost, f.port, "POST", "/echo", std::string(4096, 'x'));
  BOOST_TEST(r.status == 413);
  BOOST_TEST(r.headers["content-type"] == "application/json");
  BOOST_TEST(nlohmann::json::parse(r.body)["error"]["code"].get<int>() == 413);
  // A chunked body has no Content-Length up front: the limit trips while it streams in.
  std::string out = raw_exchange(kHost, f.port,
                                 "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                                 "800\r\n" + std::string(0x800, 'y') + "\r\n0\r\n\r\n",
                                 10);
  BOOST_TEST(out.rfind("HTTP/1.1 413", 0) == 0u);
}

BOOST_AUTO_TEST_CASE(huge_headers_get_431) {
  auto o = test_options();
  o.max_header_bytes = 8192;
  Fixture f(o);
  auto r = http_request(kHost, f.port, "GET", "/echo", "", {{"X-Big", std::string(20000, 'h')}});
  BOOST_TEST(r.status == 431);
  BOOST_TEST(nlohmann::json::parse(r.body)["error"]["code"].get<int>() == 431);
  BOOST_TEST(http_request(kHost, f.port, "GET", "/echo").status == 200);
}

BOOST_AUTO_TEST_CASE(garbage_gets_400_and_server_survives) {
  Fixture f;
  static const char kGarbage[] = "\x16\x03\x01\x02\x00 garbage\r\n\r\n";  // TLS-ish bytes with a NUL
  std::string out = raw_exchange(kHost, f.port, std::string(kGarbage, sizeof kGarbage - 1), 10);
  BOOST_TEST(out.rfind("HTTP/1.1 400", 0) == 0u);
  BOOST_TEST(out.find("\"code\":400") != std::string::npos);
  out = raw_exchange(kHost, f.port, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", 10);
  BOOST_TEST(out.rfind("HTTP/1.1 400", 0) == 0u);
  BOOST_TEST(http_request(kHost, f.port, "GET", "/echo").status == 200);
}

BOOST_AUTO_TEST_CASE(slow_request_gets_408_and_idle_connection_closes) {
  auto o = test_options();
  o.read_timeout_s = 0.3;
  o.idle_timeout_s = 0.3;
  Fixture f(o);
  auto t0 = Clock::now();
  std::string out = raw_exchange(kHost, f.port, "GET /echo HTTP/1.1\r\nHost: x\r\n", 10);
  BOOST_TEST(out.rfind("HTTP/1.1 408", 0) == 0u);
  BOOST_TEST(seconds_since(t0) < 5);

  // A complete keep-alive request is answered, then the idle connection is closed by the server.
  t0 = Clock::now();
  out = raw_exchange(kHost, f.port, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n", 10);
  BOOST_TEST(out.rfind("HTTP/1.1 200", 0) == 0u);
  BOOST_TEST(count_of(out, "HTTP/1.1") == 1u);
  BOOST_TEST(seconds_since(t0) < 5);
}

BOOST_AUTO_TEST_CASE(disconnect_mid_stream_fires_callback) {
  Fixture f;
  HttpStream s(kHost, f.port, "GET", "/slowstream");
  BOOST_TEST(s.status() == 200);
  BOOST_TEST(s.next_chunk(5).has_value());
  BOOST_TEST(s.next_chunk(5).has_value());
  BOOST_TEST(f.disconnects.value() == 0);
  s.close();
  BOOST_TEST(f.disconnects.wait(1, 5));
  BOOST_TEST(f.wait_connections(0, 5));
}

BOOST_AUTO_TEST_CASE(disconnect_while_pending_fires_callback_and_late_calls_are_noops) {
  Fixture f;
  raw_exchange(kHost, f.port, "GET /pending HTTP/1.1\r\nHost: x\r\n\r\n", 0.3);
  BOOST_TEST(f.pending_arrived.wait(1, 5));
  BOOST_TEST(f.disconnects.wait(1, 5));
  BOOST_TEST(f.wait_connections(0, 5));
  ResponderPtr late;
  {
    std::lock_guard l(f.mu);
    late = f.held.at(0);
  }
  late->respond(200, "text/plain", "too late");
  late->begin_stream(200, "text/event-stream");
  late->write("x");
  late->end();
  // Registered after the client is gone: runs at once.
  late->on_disconnect([&f] { f.disconnects.signal(); });
  BOOST_TEST(f.disconnects.wait(2, 5));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  BOOST_TEST(f.disconnects.value() == 2);  // and the first callback did not run twice
}

BOOST_AUTO_TEST_CASE(half_close_counts_as_gone) {
  Fixture f;
  auto t0 = Clock::now();
  std::string out = raw_exchange(kHost, f.port, "GET /pending HTTP/1.1\r\nHost: x\r\n\r\n", 10, true);
  BOOST_TEST(out.empty());
  BOOST_TEST(seconds_since(t0) < 5);  // the server closed the connection
  BOOST_TEST(f.disconnects.wait(1, 5));
}

BOOST_AUTO_TEST_CASE(many_dropped_connections_leave_server_answering) {
  Fixture f;
  for (int i = 0; i < 200; ++i) {
    // Alternate: connect and drop; drop mid-header; drop mid-body.
    const char* bytes[] = {"", "GET /ec", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nab"};
    raw_exchange(kHost, f.port, bytes[i % 3], 0);
  }
  BOOST_TEST(f.wait_connections(0, 10));
  auto r = http_request(kHost, f.port, "GET", "/echo?ok");
  BOOST_TEST(r.status == 200);
  BOOST_TEST(r.body == "GET /echo?ok|");
}

BOOST_AUTO_TEST_CASE(stop_accepting_keeps_open_connections) {
  Fixture f;
  HttpStream s(kHost, f.port, "GET", "/slowstream");
  BOOST_TEST(s.status() == 200);
  f.server.stop_accepting();
  BOOST_CHECK_THROW(http_request(kHost, f.port, "GET", "/echo", "", {}, 5), std::runtime_error);
  BOOST_TEST(s.next_chunk(5).has_value());
  BOOST_TEST(f.server.open_connections() == 1u);
}

BOOST_AUTO_TEST_CASE(stop_with_open_connections_returns_promptly) {
  Fixture f;
  std::vector<std::unique_ptr<HttpStream>> clients;
  for (int i = 0; i < 3; ++i)
    clients.push_back(std::make_unique<HttpStream>(kHost, f.port, "GET", "/pending"));
  clients.push_back(std::make_unique<HttpStream>(kHost, f.port, "GET", "/slowstream"));
  BOOST_TEST(clients.back()->status() == 200);
  BOOST_TEST(f.pending_arrived.wait(3, 5));
  BOOST_TEST(f.wait_connections(4, 5));

  auto t0 = Clock::now();
  f.server.stop();
  BOOST_TEST(seconds_since(t0) < 2);
  BOOST_TEST(f.server.open_connections() == 0u);
  BOOST_TEST(f.disconnects.wait(4, 5));  // stop() abandons owed responses: their callbacks run
  f.server.stop();                       // idempotent
  {
    std::lock_guard l(f.mu);
    for (auto& r : f.held) r->respond(200, "text/plain", "after stop");  // no-op, no crash
  }
  // The clients see the connection closed, not a hang.
  auto c = clients.front()->next_chunk(5);
  BOOST_TEST(!c.has_value());
  BOOST_TEST(!clients.front()->timed_out());
}

BOOST_AUTO_TEST_CASE(bind_failure_names_host_and_port) {
  Fixture f;
  auto o = test_options();
  o.port = f.port;
  Server other(o, [](Request, ResponderPtr) {});
  BOOST_CHECK_EXCEPTION(other.start(), std::runtime_error, [&](const std::runtime_error& e) {
    return std::string(e.what()).find("127.0.0.1:" + std::to_string(f.port)) != std::string::npos;
  });
}
