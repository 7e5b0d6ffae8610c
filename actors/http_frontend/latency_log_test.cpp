#define BOOST_TEST_MODULE latency_log
#include <boost/test/unit_test.hpp>

#include "actors/http_frontend/latency_log.hpp"

using troupe::LatencyLog;

BOOST_AUTO_TEST_CASE(percentiles_over_buckets) {
  LatencyLog log;
  BOOST_CHECK_EQUAL(log.percentile_us(0.5), 0);
  for (int us = 1; us <= 100; ++us) log.record_ns(us * 1000);  // 1..100 µs
  BOOST_CHECK_EQUAL(log.count(), 100u);
  BOOST_CHECK_EQUAL(log.percentile_us(0.5), 50);
  BOOST_CHECK_EQUAL(log.percentile_us(0.99), 99);
  log.record_ns(50'000'000, 100);  // 50 ms: the overflow bucket
  BOOST_CHECK_EQUAL(log.percentile_us(0.99), LatencyLog::kBuckets);
  log.record_ns(-5);  // clock skew never underflows
  BOOST_CHECK_EQUAL(log.count(), 201u);
}
