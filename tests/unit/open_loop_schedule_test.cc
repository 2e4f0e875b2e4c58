// SPDX-License-Identifier: Apache-2.0
// The same-node benchmark's open-loop schedule, response accounting and latency histogram.
#include "bench/open_loop_schedule.h"

#include <cstdint>
#include <vector>

#include "gtest/gtest.h"
#include "userspace/metrics/latency_histogram.h"

namespace sockmesh::bench {

using metrics::LatencyHistogram;
namespace {

TEST(OpenLoopScheduleTest, RequestsAreEvenlySpacedFromTheStart) {
  OpenLoopSchedule s(/*start_ns=*/1'000, /*rate=*/1'000, /*seconds=*/2);
  EXPECT_EQ(s.total(), 2'000u);
  EXPECT_EQ(s.At(0), 1'000u);
  EXPECT_EQ(s.At(1), 1'001'000u);
  EXPECT_EQ(s.At(1'999), 1'000u + 1'999'000'000u);
}

TEST(OpenLoopScheduleTest, NoDriftOverManyRequestsAtARateThatIsNotAWholePeriod) {
  // 3/s: a period of 333,333,333.3 ns. Adding a truncated period would lose 1 ns per request.
  OpenLoopSchedule s(0, 3, 1'000'000);
  EXPECT_EQ(s.At(3'000'000), 1'000'000'000'000'000u);
}

TEST(OpenLoopScheduleTest, DueByCountsRequestsWhoseTimeHasCome) {
  OpenLoopSchedule s(/*start_ns=*/500, /*rate=*/1e6, /*seconds=*/1e-3);  // every 1,000 ns
  EXPECT_EQ(s.total(), 1'000u);
  EXPECT_EQ(s.DueBy(0), 0u);
  EXPECT_EQ(s.DueBy(499), 0u);
  EXPECT_EQ(s.DueBy(500), 1u);
  EXPECT_EQ(s.DueBy(1'499), 1u);
  EXPECT_EQ(s.DueBy(1'500), 2u);
  EXPECT_EQ(s.DueBy(100'500), 101u);
  EXPECT_EQ(s.DueBy(uint64_t{1} << 62), 1'000u) << "capped at the total";
}

TEST(OpenLoopScheduleTest, DueByAgreesWithAtEverywhere) {
  OpenLoopSchedule s(/*start_ns=*/123, /*rate=*/7'777.7, /*seconds=*/1);
  for (uint64_t i = 0; i < s.total(); ++i) {
    ASSERT_EQ(s.DueBy(s.At(i)), i + 1) << i;
    ASSERT_EQ(s.DueBy(s.At(i) - 1), i) << i;
  }
}

TEST(OpenLoopScheduleTest, NoRequestsWhenTheRunIsShorterThanOnePeriod) {
  OpenLoopSchedule s(0, 10, 0.05);
  EXPECT_EQ(s.total(), 0u);
  EXPECT_EQ(s.DueBy(1'000'000'000), 0u);
}

TEST(InFlightTest, ResponsesCompleteRequestsInOrderAcrossPartialReads) {
  InFlight f(/*response_bytes=*/100);
  f.Sent(10);
  f.Sent(20);
  f.Sent(30);
  std::vector<uint64_t> done;
  auto record = [&](uint64_t t) { done.push_back(t); };
  EXPECT_TRUE(f.Received(99, record));
  EXPECT_TRUE(done.empty());
  EXPECT_TRUE(f.Received(1, record));
  EXPECT_EQ(done, (std::vector<uint64_t>{10}));
  EXPECT_TRUE(f.Received(150, record));  // the second whole, half of the third
  EXPECT_EQ(done, (std::vector<uint64_t>{10, 20}));
  EXPECT_EQ(f.outstanding(), 1u);
  EXPECT_EQ(f.oldest(), 30u);
  EXPECT_TRUE(f.Received(50, record));
  EXPECT_EQ(done, (std::vector<uint64_t>{10, 20, 30}));
  EXPECT_EQ(f.outstanding(), 0u);
}

TEST(InFlightTest, MoreResponsesThanRequestsIsAnError) {
  InFlight f(10);
  f.Sent(1);
  int calls = 0;
  EXPECT_FALSE(f.Received(20, [&](uint64_t) { ++calls; }));
  EXPECT_EQ(calls, 1);
}

TEST(LatencyHistogramTest, QuantilesAreWithinTheBucketResolution) {
  LatencyHistogram h;
  for (uint64_t v = 1; v <= 100'000; ++v) h.Add(v * 10);  // 10 ns .. 1 ms, uniform
  EXPECT_EQ(h.count(), 100'000u);
  for (double q : {0.5, 0.9, 0.99}) {
    const double want = q * 1'000'000;
    EXPECT_NEAR(h.Quantile(q), want, want / 64) << q;
  }
}

TEST(LatencyHistogramTest, SmallValuesAreExactAndMergeAddsCounts) {
  LatencyHistogram a, b;
  a.Add(3);
  b.Add(7);
  b.Add(7);
  a.Merge(b);
  EXPECT_EQ(a.count(), 3u);
  EXPECT_EQ(a.Quantile(0.3), 3);
  EXPECT_EQ(a.Quantile(0.5), 7);
  EXPECT_EQ(a.Quantile(1.0), 7);
  EXPECT_EQ(LatencyHistogram().Quantile(0.5), 0);
}

}  // namespace
}  // namespace sockmesh::bench
