#define BOOST_TEST_MODULE metrics
#include <boost/test/unit_test.hpp>

#include "actors/http_frontend/metrics.hpp"

using namespace troupe;

namespace {
bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos || text.rfind(line + "\n", 0) == 0;
}
}  // namespace

BOOST_AUTO_TEST_CASE(renders_vllm_names_labels_and_cumulative_buckets) {
  auto msg = MetricsMsg::make([](schema::MetricsSnapshot::Builder b) {
    b.setNumRunning(3);
    b.setNumWaiting(7);
    b.setKvBlocksTotal(200);
    b.setKvBlocksFree(150);
    b.setPrefixCacheQueriesTotal(1000);
    b.setPrefixCacheHitsTotal(640);
    b.setPreemptionsTotal(2);
    b.setPromptTokensTotal(1234);
    b.setGenerationTokensTotal(99);
    b.setRequestsFinishedStop(4);
    b.setRequestsFinishedLength(5);
    b.setRequestsAborted(1);
    auto h = b.initTimeToFirstToken();
    auto ub = h.initUpperBounds(2);
    ub.set(0, 0.25);
    ub.set(1, 1.0);
    auto c = h.initBucketCounts(3);
    c.set(0, 2);
    c.set(1, 3);
    c.set(2, 1);
    h.setSum(4.5);
    h.setCount(6);
  });
  auto text = render_prometheus(*msg.view(), "my \"model\"");
  const std::string L = "model_name=\"my \\\"model\\\"\"";
  BOOST_TEST_MESSAGE(text);
  BOOST_CHECK(has_line(text, "# TYPE vllm:num_requests_running gauge"));
  BOOST_CHECK(has_line(text, "vllm:num_requests_running{" + L + "} 3.0"));
  BOOST_CHECK(has_line(text, "vllm:num_requests_waiting{" + L + "} 7.0"));
  BOOST_CHECK(has_line(text, "vllm:kv_cache_usage_perc{" + L + "} 0.25"));
  BOOST_CHECK(has_line(text, "# TYPE vllm:prefix_cache_queries_total counter"));
  BOOST_CHECK(has_line(text, "vllm:prefix_cache_queries_total{" + L + "} 1000.0"));
  BOOST_CHECK(has_line(text, "vllm:prefix_cache_hits_total{" + L + "} 640.0"));
  BOOST_CHECK(has_line(text, "vllm:num_preemptions_total{" + L + "} 2.0"));
  BOOST_CHECK(has_line(text, "vllm:prompt_tokens_total{" + L + "} 1234.0"));
  BOOST_CHECK(has_line(text, "vllm:generation_tokens_total{" + L + "} 99.0"));
  BOOST_CHECK(has_line(text, "vllm:request_success_total{" + L + ",finished_reason=\"stop\"} 4.0"));
  BOOST_CHECK(has_line(text, "vllm:request_success_total{" + L + ",finished_reason=\"length\"} 5.0"));
  BOOST_CHECK(has_line(text, "vllm:request_success_total{" + L + ",finished_reason=\"abort\"} 1.0"));
  BOOST_CHECK(has_line(text, "# TYPE vllm:time_to_first_token_seconds histogram"));
  BOOST_CHECK(has_line(text, "vllm:time_to_first_token_seconds_bucket{" + L + ",le=\"0.25\"} 2.0"));
  BOOST_CHECK(has_line(text, "vllm:time_to_first_token_seconds_bucket{" + L + ",le=\"1.0\"} 5.0"));
  BOOST_CHECK(has_line(text, "vllm:time_to_first_token_seconds_bucket{" + L + ",le=\"+Inf\"} 6.0"));
  BOOST_CHECK(has_line(text, "vllm:time_to_first_token_seconds_sum{" + L + "} 4.5"));
  BOOST_CHECK(has_line(text, "vllm:time_to_first_token_seconds_count{" + L + "} 6.0"));
  // Unset histograms still expose a +Inf bucket, so rate() queries see the series from the start.
  BOOST_CHECK(has_line(text, "vllm:inter_token_latency_seconds_bucket{" + L + ",le=\"+Inf\"} 0.0"));
  BOOST_CHECK(has_line(text, "vllm:e2e_request_latency_seconds_count{" + L + "} 0.0"));
  BOOST_CHECK(has_line(text, "vllm:request_queue_time_seconds_sum{" + L + "} 0.0"));
}
