// SPDX-License-Identifier: Apache-2.0
// The userspace half of the kernel metrics: the histogram layout shared with bpf/lib/conn_track.h,
// quantiles, naming (cgroup id -> workload, svc_id -> Service) and the Prometheus exposition.
#include "userspace/metrics/kernel_metrics.h"

#include <prometheus/text_serializer.h>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "userspace/agent/kernel_metrics_source.h"
#include "userspace/bpf/conn_stats.h"

namespace sockmesh {
namespace {

// The kernel's bucket function (bpf/lib/conn_track.h sm_hist_bucket), restated to check that the
// userspace bounds describe exactly the values the kernel puts in each bucket.
int KernelBucket(uint64_t us) {
  if (us < 4) return static_cast<int>(us);
  int e = 63 - __builtin_clzll(us);
  int b = 4 + (e - 2) * 4 + static_cast<int>((us >> (e - 2)) & 3);
  return b < SM_HIST_BUCKETS ? b : SM_HIST_BUCKETS - 1;
}

TEST(ConnStatsTest, BucketBoundsMatchTheKernelLayout) {
  for (uint64_t us = 0; us < (1u << 20); us += 1 + us / 64) {
    int b = KernelBucket(us);
    EXPECT_GE(us, bpf::HistBucketLowerUs(b)) << us;
    EXPECT_LT(us, bpf::HistBucketUpperUs(b)) << us;
  }
  for (int b = 4; b < SM_HIST_BUCKETS; ++b) {
    EXPECT_EQ(bpf::HistBucketLowerUs(b), bpf::HistBucketUpperUs(b - 1));
    // At most 25% wide: the accuracy the issue's 20%-or-one-bucket check relies on.
    EXPECT_LE(bpf::HistBucketUpperUs(b), bpf::HistBucketLowerUs(b) * 5 / 4) << b;
  }
}

TEST(ConnStatsTest, QuantileInterpolatesInsideTheBucket) {
  sm_hist h{};
  EXPECT_EQ(bpf::HistQuantileSeconds(h, 0.5), 0);
  // 100 samples in [1024, 1280) us: the median is halfway.
  h.buckets[KernelBucket(1100)] = 100;
  EXPECT_NEAR(bpf::HistQuantileSeconds(h, 0.5), 1152e-6, 1e-9);
  h.buckets[KernelBucket(10000)] = 100;
  EXPECT_NEAR(bpf::HistQuantileSeconds(h, 0.125), 1088e-6, 1e-9);
  EXPECT_GE(bpf::HistQuantileSeconds(h, 0.99), 8192e-6);
  EXPECT_LT(bpf::HistQuantileSeconds(h, 0.99), 10240e-6);
  EXPECT_EQ(bpf::HistCount(h), 200u);
}

TEST(ConnStatsTest, AddAndSubtract) {
  sm_conn_stats a{};
  sm_conn_stats b{};
  a.opened = 5;
  a.request_us.buckets[10] = 3;
  b.opened = 2;
  b.request_us.buckets[10] = 1;
  bpf::AddConnStats(a, b);
  EXPECT_EQ(a.opened, 7u);
  EXPECT_EQ(a.request_us.buckets[10], 4u);
  bpf::SubtractConnStats(a, b);
  bpf::SubtractConnStats(a, b);
  EXPECT_EQ(a.opened, 3u);
  EXPECT_EQ(a.request_us.buckets[10], 2u);
}

model::Frontend Vip(const std::string& ip, uint16_t port) {
  return model::Frontend{.vip = *model::IpAddress::Parse(ip), .port = port};
}

TEST(KernelMetricsTest, LabelsNameWorkloadAndServiceOrSayUnknown) {
  std::vector<bpf::ConnStatsEntry> entries(3);
  entries[0].key = {.cgroup_id = 11, .svc_id = 1, .pad = 0};
  entries[1].key = {.cgroup_id = 99, .svc_id = 2, .pad = 0};
  entries[2].key = {.cgroup_id = 11, .svc_id = 7, .pad = 0};  // frontend gone meanwhile
  std::map<uint32_t, model::Frontend> frontends = {{1, Vip("127.10.0.1", 80)},
                                                   {2, Vip("127.10.0.1", 8080)}};
  std::map<model::Frontend, agent::ServiceName> services = {
      {Vip("127.10.0.1", 80), {"shop", "web"}}, {Vip("127.10.0.1", 8080), {"shop", "web"}}};
  std::vector<agent::WorkloadCgroup> workloads = {
      {.workload = {"shop", "frontend"}, .path = "/x/shop/frontend", .cgroup_id = 11}};
  auto out = agent::LabelConnStats(entries, frontends, services, workloads);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].labels.source_workload, "frontend");
  EXPECT_EQ(out[0].labels.source_namespace, "shop");
  EXPECT_EQ(out[0].labels.destination_service_name, "web");
  EXPECT_EQ(out[1].labels.source_workload, "unknown");
  EXPECT_EQ(out[1].labels.destination_service_namespace, "shop");
  EXPECT_EQ(out[2].labels.destination_service_name, "unknown");
}

TEST(KernelMetricsTest, ExpositionMergesEqualLabelsAndUsesBaseUnits) {
  metrics::LabelledConnStats a;
  a.labels = {.source_workload = "frontend",
              .source_namespace = "shop",
              .destination_service_name = "web",
              .destination_service_namespace = "shop"};
  a.stats.opened = 2;
  a.stats.established = 2;
  a.stats.closed = 1;
  a.stats.requests = 1;
  a.stats.request_us.buckets[KernelBucket(1500)] = 1;
  a.stats.request_us.sum_us = 1500;
  metrics::LabelledConnStats b = a;  // a second port of the same Service
  std::string text = prometheus::TextSerializer().Serialize(metrics::ConnMetricFamilies({a, b}));
  const std::string labels =
      R"({reporter="source",source_workload="frontend",source_namespace="shop",)"
      R"(destination_service="web.shop.svc.cluster.local",destination_service_name="web",)"
      R"(destination_service_namespace="shop",destination_workload="unknown")";
  EXPECT_TRUE(absl::StrContains(text, "sockmesh_tcp_connections_opened_total" + labels + "} 4"))
      << text;
  EXPECT_TRUE(absl::StrContains(text, "sockmesh_tcp_connections_active" + labels + "} 2")) << text;
  EXPECT_TRUE(absl::StrContains(text, "sockmesh_request_duration_seconds_count" + labels + "} 2"))
      << text;
  EXPECT_TRUE(absl::StrContains(text, "sockmesh_request_duration_seconds_sum" + labels + "} 0.003"))
      << text;
  EXPECT_TRUE(absl::StrContains(
      text, "sockmesh_request_duration_seconds_bucket" + labels + R"(,le="0.001536"} 2)"))
      << text;
  EXPECT_TRUE(absl::StrContains(text, "# TYPE sockmesh_request_duration_seconds histogram"));

  std::string fill = prometheus::TextSerializer().Serialize(
      metrics::MapFillFamilies({{"sm_svc_v1", 4, 16}, {"sk_storage", 0, 0}}));
  EXPECT_TRUE(absl::StrContains(fill, R"(sockmesh_map_fill_ratio{map="sm_svc_v1"} 0.25)")) << fill;
  EXPECT_FALSE(absl::StrContains(fill, "sk_storage")) << fill;
}

}  // namespace
}  // namespace sockmesh
