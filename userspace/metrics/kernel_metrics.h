// SPDX-License-Identifier: Apache-2.0
// Metrics the kernel measured, turned into Prometheus families at scrape time: per (source
// workload, destination service) connection counters and latency histograms from
// sm_conn_stats_v1, and the fill ratio of the pinned maps. Labels follow Istio's standard metrics
// (reporter, source_workload, destination_service, ...).
#ifndef SOCKMESH_USERSPACE_METRICS_KERNEL_METRICS_H_
#define SOCKMESH_USERSPACE_METRICS_KERNEL_METRICS_H_

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <compare>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "userspace/bpf/abi.h"

namespace sockmesh::metrics {

// Who talked to what. "unknown" where the agent cannot tell.
struct ConnLabels {
  std::string source_workload = "unknown";
  std::string source_namespace = "unknown";
  std::string destination_service_name = "unknown";
  std::string destination_service_namespace = "unknown";
  auto operator<=>(const ConnLabels&) const = default;
};

struct LabelledConnStats {
  ConnLabels labels;
  sm_conn_stats stats{};
};

struct MapFill {
  std::string map;
  uint64_t entries = 0;
  uint64_t max_entries = 0;
};

using ConnStatsReader = std::function<absl::StatusOr<std::vector<LabelledConnStats>>()>;
using MapFillReader = std::function<absl::StatusOr<std::vector<MapFill>>()>;

// The families for `stats`; entries with equal labels (two ports of one service, cgroups of no
// known workload) are added up first.
std::vector<prometheus::MetricFamily> ConnMetricFamilies(
    const std::vector<LabelledConnStats>& stats);
std::vector<prometheus::MetricFamily> MapFillFamilies(const std::vector<MapFill>& fills);

// Reads both at every scrape, so the agent does no polling.
class KernelMetricsCollector : public prometheus::Collectable {
 public:
  KernelMetricsCollector(ConnStatsReader conn_stats, MapFillReader map_fill)
      : conn_stats_(std::move(conn_stats)), map_fill_(std::move(map_fill)) {}
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  ConnStatsReader conn_stats_;
  MapFillReader map_fill_;
};

}  // namespace sockmesh::metrics

#endif  // SOCKMESH_USERSPACE_METRICS_KERNEL_METRICS_H_
