#define BOOST_TEST_MODULE latency_log
#include <boost/test/unit_test.hpp>

#include "actors/http_frontend/latency_log.hpp"

#include <thread>
#include <vector>

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

// The HTTP threads record concurrently: no sample may be lost.
BOOST_AUTO_TEST_CASE(concurrent_recording_keeps_every_sample) {
  LatencyLog log;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&log, t] {
      for (int i = 0; i < 20000; ++i) log.record_ns((t == 3 ? 900 : 5) * 1000);
    });
  for (auto& th : threads) th.join();
  BOOST_CHECK_EQUAL(log.count(), 80000u);
  BOOST_CHECK_EQUAL(log.percentile_us(0.5), 5);
  BOOST_CHECK_EQUAL(log.percentile_us(0.75), 5);
  BOOST_CHECK_EQUAL(log.percentile_us(0.76), 900);
}

// Per-thread shards merge into the same percentiles as one log would give.
BOOST_AUTO_TEST_CASE(sharded_log_merges_threads) {
  troupe::ShardedLatencyLog log;
  BOOST_CHECK_EQUAL(log.percentile_us(0.5), 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&log, t] {
      for (int i = 0; i < 20000; ++i) log.record_ns((t == 3 ? 900 : 5) * 1000);
    });
  for (auto& th : threads) th.join();
  log.record_ns(7000);  // this thread's own shard
  BOOST_CHECK_EQUAL(log.count(), 80001u);
  BOOST_CHECK_EQUAL(log.percentile_us(0.5), 5);
  BOOST_CHECK_EQUAL(log.percentile_us(0.75), 7);
  BOOST_CHECK_EQUAL(log.percentile_us(0.76), 900);
  troupe::ShardedLatencyLog other;  // a second log never sees the first one's samples
  other.record_ns(1000);
  BOOST_CHECK_EQUAL(other.count(), 1u);
  BOOST_CHECK_EQUAL(log.count(), 80001u);
}
