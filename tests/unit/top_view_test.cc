// SPDX-License-Identifier: Apache-2.0
// sockmeshctl top's arithmetic and formats: rates and interval percentiles from two snapshots.
#include "userspace/ctl/top_view.h"

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace sockmesh::ctl {
namespace {

bpf::ConnStatsEntry Entry(uint64_t cgroup, uint32_t svc, uint64_t opened, uint64_t requests,
                          int bucket) {
  bpf::ConnStatsEntry e;
  e.key = {.cgroup_id = cgroup, .svc_id = svc, .pad = 0};
  e.stats.opened = opened;
  e.stats.established = opened;
  e.stats.requests = requests;
  e.stats.request_us.buckets[bucket] = requests;
  return e;
}

TEST(TopViewTest, RatesAndPercentilesComeFromTheDifference) {
  // Bucket 44 is [1024, 1280) us, bucket 56 [8192, 10240) us.
  std::vector<bpf::ConnStatsEntry> before = {Entry(1, 1, 10, 100, 44)};
  std::vector<bpf::ConnStatsEntry> after = {Entry(1, 1, 14, 100, 44), Entry(2, 1, 6, 0, 44),
                                            Entry(1, 2, 0, 50, 56)};
  after[0].stats.request_us.buckets[56] = 20;  // 20 slow requests in this interval
  after[0].stats.requests += 20;
  after[0].stats.closed = 4;
  std::map<uint32_t, std::string> names = {{1, "127.10.0.1:80/TCP"}};
  std::vector<TopRow> rows = ComputeTop(before, after, names, 2.0);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].frontend, "svc_id 2");  // 25 req/s sorts first
  EXPECT_DOUBLE_EQ(rows[0].requests_per_second, 25);
  EXPECT_EQ(rows[1].frontend, "127.10.0.1:80/TCP");
  EXPECT_DOUBLE_EQ(rows[1].requests_per_second, 10);
  EXPECT_DOUBLE_EQ(rows[1].connections_per_second, 5);  // (14 - 10 + 6) / 2 s
  EXPECT_GE(rows[1].request_p50_seconds, 8192e-6);      // only the interval's slow ones
  EXPECT_EQ(rows[1].active, 16u);                       // 14 + 6 established, 4 closed

  std::string table = FormatTopTable(rows, 2.0);
  EXPECT_TRUE(absl::StrContains(table, "FRONTEND")) << table;
  EXPECT_TRUE(absl::StrContains(table, "127.10.0.1:80/TCP  10.0")) << table;
  nlohmann::json doc = nlohmann::json::parse(FormatTopJson(rows, 2.0));
  EXPECT_EQ(doc["interval_seconds"], 2.0);
  EXPECT_EQ(doc["services"][1]["connections_per_second"], 5.0);
}

}  // namespace
}  // namespace sockmesh::ctl
