// Unit tests of `troupe bench`'s pure logic: vLLM's metric definitions on synthetic timings, the random
// dataset, the SSE parser and chunk interpretation, flags and the report helpers.
#define BOOST_TEST_MODULE bench_metrics_test
#include <boost/test/unit_test.hpp>

#include "tools/bench/args.hpp"
#include "tools/bench/dataset.hpp"
#include "tools/bench/metrics.hpp"
#include "tools/bench/report.hpp"
#include "tools/bench/sse.hpp"

#include <cmath>
#include <random>

using namespace troupe::bench;

namespace {

RequestOutput ok(double start, double ttft, std::vector<double> itl, int out_tokens, int prompt = 10) {
  RequestOutput o;
  o.success = true;
  o.start_time = start;
  o.ttft = ttft;
  o.itl = std::move(itl);
  o.latency = ttft;
  for (double g : o.itl) o.latency += g;
  o.output_tokens = out_tokens;
  o.prompt_len = prompt;
  return o;
}

}  // namespace

BOOST_AUTO_TEST_CASE(percentiles_interpolate_like_numpy) {
  // numpy.percentile([1, 2, 3, 4], p) for p = 0, 25, 50, 90, 99, 100
  std::vector<double> xs{4, 1, 3, 2};
  BOOST_TEST(percentile(xs, 0) == 1.0);
  BOOST_TEST(percentile(xs, 25) == 1.75, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(percentile(xs, 50) == 2.5, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(percentile(xs, 90) == 3.7, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(percentile(xs, 99) == 3.97, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(percentile(xs, 100) == 4.0);
  BOOST_TEST(percentile({}, 99) == 0.0);  // vLLM: np.percentile(xs or 0) -> 0
  BOOST_TEST(percentile({5}, 99) == 5.0);
  // np.std (ddof 0) and pandas' std (ddof 1) of [1, 2, 3, 4]
  BOOST_TEST(stddev(xs) == std::sqrt(1.25), boost::test_tools::tolerance(1e-12));
  BOOST_TEST(stddev(xs, 1) == std::sqrt(5.0 / 3.0), boost::test_tools::tolerance(1e-12));
}

BOOST_AUTO_TEST_CASE(metrics_follow_vllm_definitions) {
  std::vector<RequestOutput> outs;
  outs.push_back(ok(100.0, 0.1, {0.01, 0.02, 0.03}, 4, 10));  // latency 0.16, tpot (0.16-0.1)/3 = 0.02
  outs.push_back(ok(100.5, 0.3, {0.05}, 2, 20));              // latency 0.35, tpot 0.05
  outs.push_back(ok(101.0, 0.2, {}, 1, 30));                  // one token: no TPOT sample
  RequestOutput bad;
  bad.error = "HTTP 500: boom";
  outs.push_back(bad);
  std::vector<double> ps{50, 99};
  auto m = calculate_metrics(outs, 2.0, ps, {});
  BOOST_TEST(m.completed == 3);
  BOOST_TEST(m.failed == 1);
  BOOST_TEST(m.total_input == 60);
  BOOST_TEST(m.total_output == 7);
  BOOST_TEST(m.actual_output_lens == (std::vector<int>{4, 2, 1, 0}), boost::test_tools::per_element());
  BOOST_TEST(m.request_throughput == 1.5, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(m.output_throughput == 3.5, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(m.total_token_throughput == 33.5, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(m.ttft.mean == 200.0, boost::test_tools::tolerance(1e-9));
  BOOST_TEST(m.ttft.median == 200.0, boost::test_tools::tolerance(1e-9));
  BOOST_TEST(m.tpot.mean == 35.0, boost::test_tools::tolerance(1e-9));  // mean of 20 ms and 50 ms
  BOOST_TEST(m.tpot.percentiles[1].second == 49.7, boost::test_tools::tolerance(1e-9));
  BOOST_TEST(m.itl.mean == 27.5, boost::test_tools::tolerance(1e-9));  // 10, 20, 30, 50 ms
  BOOST_TEST(m.e2el.median == 200.0, boost::test_tools::tolerance(1e-9));  // 160, 200 (ttft only), 350
  // Tokens at 100.1..100.16 and 100.8, 100.85 (bucket 0), 101.2 (bucket 1); the first two requests are
  // active in bucket 0, the third only in bucket 1.
  BOOST_TEST(m.max_output_tokens_per_s == 6.0);
  BOOST_TEST(m.max_concurrent_requests == 2);
}

BOOST_AUTO_TEST_CASE(goodput_counts_requests_meeting_every_objective) {
  std::vector<RequestOutput> outs{ok(0, 0.1, {0.01, 0.01}, 3), ok(0, 0.5, {0.01}, 2), ok(0, 0.1, {0.2}, 2)};
  std::vector<double> ps{99};
  auto g = parse_goodput({"ttft:200", "tpot:50"});
  BOOST_TEST(*g.ttft_ms == 200.0);
  auto m = calculate_metrics(outs, 2.0, ps, g);
  BOOST_TEST(m.request_goodput == 0.5);  // only the first: the second misses TTFT, the third TPOT
  BOOST_TEST(calculate_metrics(outs, 1.0, ps, parse_goodput({"e2el:1000"})).request_goodput == 3.0);
  BOOST_CHECK_THROW(parse_goodput({"ttft=5"}), std::invalid_argument);
  BOOST_CHECK_THROW(parse_goodput({"latency:5"}), std::invalid_argument);
  BOOST_CHECK_THROW(parse_goodput({"ttft:-1"}), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(random_dataset_lengths_and_determinism) {
  RandomDatasetOptions o;
  o.num_prompts = 200;
  o.input_len = 100;
  o.output_len = 50;
  o.range_ratio = 0.25;
  o.prefix_len = 7;
  o.seed = 42;
  auto a = sample_random(o, nullptr);
  auto b = sample_random(o, nullptr);
  BOOST_TEST(a.size() == 200u);
  bool varied = false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    BOOST_TEST(a[i].prompt == b[i].prompt);
    BOOST_TEST(a[i].prompt_len == int(a[i].prompt.size()));  // one byte per token without a tokenizer
    BOOST_TEST(a[i].prompt_len >= 7 + 75);
    BOOST_TEST(a[i].prompt_len <= 7 + 125);
    BOOST_TEST(a[i].expected_output_len >= 37);  // floor(50 * 0.75)
    BOOST_TEST(a[i].expected_output_len <= 63);  // ceil(50 * 1.25)
    BOOST_TEST(a[i].prompt.substr(0, 7) == a[0].prompt.substr(0, 7));  // the shared prefix
    for (char c : a[i].prompt) BOOST_TEST((c >= 0x20 && c < 0x7f));
    varied |= a[i].prompt_len != a[0].prompt_len;
  }
  BOOST_TEST(varied);
  o.seed = 43;
  BOOST_TEST(sample_random(o, nullptr)[0].prompt != a[0].prompt);
  o.range_ratio = 0;
  for (auto& r : sample_random(o, nullptr)) BOOST_TEST((r.prompt_len == 107 && r.expected_output_len == 50));
  o.range_ratio = 1.0;
  BOOST_CHECK_THROW(sample_random(o, nullptr), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(uniform_and_normal_draws_stay_in_range) {
  std::mt19937_64 rng(1);
  int lo_seen = 0, hi_seen = 0;
  for (int i = 0; i < 10000; ++i) {
    auto v = uniform_int(rng, 3, 7);
    BOOST_REQUIRE((v >= 3 && v <= 7));
    lo_seen += v == 3, hi_seen += v == 7;
  }
  BOOST_TEST((lo_seen > 1500 && hi_seen > 1500));
  double sum = 0;
  for (int i = 0; i < 10000; ++i) {
    int v = positive_normal_int(rng, 150, 80);
    BOOST_REQUIRE(v > 0);
    sum += v;
  }
  // Above 150: draws below 1 are redrawn (a normal truncated at 1 has mean ~155.8; int() takes ~0.5 off).
  BOOST_TEST(std::abs(sum / 10000 - 155.3) < 3);
}

BOOST_AUTO_TEST_CASE(sse_parser_survives_any_split) {
  const std::string stream =
    ": ping\r\n\r\ndata: {\"a\":1}\n\ndata: line1\ndata: line2\r\n\r\nevent: x\ndata: {\"b\":2}\n\ndata: [DONE]\n\n";
  const std::vector<std::string> want{"{\"a\":1}", "line1\nline2", "{\"b\":2}", "[DONE]"};
  std::mt19937 rng(7);
  for (int trial = 0; trial < 300; ++trial) {
    SseParser p;
    std::vector<std::string> got;
    auto sink = [&](std::string&& d) { got.push_back(std::move(d)); };
    std::size_t pos = 0;
    while (pos < stream.size()) {  // trial 0: one byte at a time; later: random cuts
      std::size_t n = trial == 0 ? 1 : 1 + rng() % 9;
      p.feed(std::string_view(stream).substr(pos, n), sink);
      pos += n;
    }
    p.finish(sink);
    BOOST_REQUIRE(got == want);
  }
  SseParser p;  // an event without its blank line is delivered at the end of the stream
  std::vector<std::string> got;
  p.feed("data: tail", [&](std::string&& d) { got.push_back(d); });
  BOOST_TEST(got.empty());
  p.finish([&](std::string&& d) { got.push_back(d); });
  BOOST_TEST(got == std::vector<std::string>{"tail"}, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(stream_chunks_are_read_as_vllm_reads_them) {
  auto role = parse_stream_chunk(R"({"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]})", true);
  BOOST_TEST(!role.is_token);
  auto empty_tok = parse_stream_chunk(R"({"choices":[{"delta":{"content":""}}]})", true);
  BOOST_TEST(empty_tok.is_token);
  auto reason = parse_stream_chunk(R"({"choices":[{"delta":{"reasoning_content":"hmm"}}]})", true);
  BOOST_TEST((reason.is_token && reason.reasoning == "hmm"));
  auto text = parse_stream_chunk(R"({"choices":[{"text":"","finish_reason":null}]})", false);
  BOOST_TEST(text.is_token);
  auto usage = parse_stream_chunk(R"({"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":9}})", false);
  BOOST_TEST((usage.has_usage && usage.prompt_tokens == 5 && usage.completion_tokens == 9 && !usage.is_token));
  BOOST_TEST(parse_stream_chunk("[DONE]", true).done);
  BOOST_TEST(parse_stream_chunk(R"({"error":{"message":"worker died","code":500}})", true).error == "worker died");
  BOOST_TEST(!parse_stream_chunk("{not json", true).error.empty());
}

BOOST_AUTO_TEST_CASE(recorder_times_token_chunks_only) {
  auto t0 = Clock::now();
  auto ms = [&](int n) { return t0 + std::chrono::milliseconds(n); };
  ResponseRecorder r(true, t0, 12);
  r.on_bytes("data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n", ms(5));
  r.on_bytes("data: {\"choices\":[{\"delta\":{\"content\":\"He\"}}]}\n\ndata: {\"choices\":[{\"del", ms(20));
  r.on_bytes("ta\":{\"content\":\"llo\"}}]}\n\n", ms(30));
  r.on_bytes("data: {\"choices\":[{\"delta\":{\"content\":\"!\"}}]}\n\n", ms(45));
  r.on_bytes("data: {\"choices\":[],\"usage\":{\"prompt_tokens\":15,\"completion_tokens\":4}}\n\ndata: [DONE]\n\n", ms(90));
  r.finish(200, "", "");
  auto& o = r.output();
  BOOST_TEST(o.success);
  BOOST_TEST(o.generated_text == "Hello!");
  BOOST_TEST(o.ttft == 0.020, boost::test_tools::tolerance(1e-9));
  BOOST_TEST(o.latency == 0.045, boost::test_tools::tolerance(1e-9));  // the last token, not [DONE]
  BOOST_TEST(o.itl.size() == 2u);
  BOOST_TEST(o.output_tokens == 4);  // usage wins over the 3 chunks
  BOOST_TEST(o.prompt_len == 15);

  ResponseRecorder e(false, t0, 3);
  e.finish(400, R"({"error":{"message":"bad prompt","type":"BadRequestError"}})", "");
  BOOST_TEST(!e.output().success);
  BOOST_TEST(e.output().error == "HTTP 400: bad prompt");
  ResponseRecorder c(false, t0, 3);
  c.on_bytes("data: {\"choices\":[{\"text\":\"a\"}]}\n\ndata: {\"choices\":[{\"text\":\"b\"}]}\n\n", ms(1));
  c.finish(200, "", "");
  BOOST_TEST(c.output().output_tokens == 2);  // no usage: one token per chunk
}

BOOST_AUTO_TEST_CASE(arguments_and_report_helpers) {
  bool help = false;
  auto a = parse_bench_args({"--base-url", "http://h:81/p/", "--backend", "vllm", "--num-prompts=5", "--goodput",
                             "ttft:10", "tpot:5", "--ignore-eos", "--max_concurrency", "3"}, &help);
  BOOST_TEST(a.backend == "openai");
  BOOST_TEST(a.endpoint == "/v1/completions");
  BOOST_TEST(a.random.num_prompts == 5);
  BOOST_TEST(a.goodput.size() == 2u);
  BOOST_TEST((a.ignore_eos && *a.max_concurrency == 3));
  BOOST_TEST(parse_bench_args({"--backend", "openai-chat"}, &help).endpoint == "/v1/chat/completions");
  BOOST_CHECK_THROW(parse_bench_args({"--bogus", "1"}, &help), std::invalid_argument);
  BOOST_CHECK_THROW(parse_bench_args({"--num-prompts", "x"}, &help), std::invalid_argument);
  auto u = parse_url("http://h:81/p/");
  BOOST_TEST((u && u->host == "h" && u->port == 81 && u->path == "/p"));
  BOOST_TEST(!parse_url("https://h"));
  BOOST_TEST(py_float(99, true) == "99");
  BOOST_TEST(py_float(99.9, true) == "99.9");
  BOOST_TEST(py_float(10, false) == "10.0");
  BOOST_TEST(py_float(1.0 / 0.0, false) == "inf");
  BOOST_TEST(centered(" Serving Benchmark Result ", '=') == "============ Serving Benchmark Result ============");
  BOOST_TEST(centered("Time to First Token", '-').size() == 50u);
  BOOST_TEST(centered("Time to First Token", '-').substr(0, 16) == "---------------T");  // Python puts the odd one right
  BOOST_TEST(parse_percentiles("50,99.9") == (std::vector<double>{50, 99.9}), boost::test_tools::per_element());
  ReportContext ctx;
  ctx.backend = "openai";
  ctx.model_id = "org/tiny";
  ctx.request_rate = 1.0 / 0.0;
  ctx.max_concurrency = 8;
  ctx.date = "20250101-000000";
  BOOST_TEST(default_result_filename(ctx) == "openai-infqps-concurrency8-tiny-20250101-000000.json");
}
