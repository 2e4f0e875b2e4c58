// SPDX-License-Identifier: Apache-2.0
#include "userspace/metrics/policy_metrics.h"

#include <map>

namespace sockmesh::metrics {

prometheus::MetricFamily PolicyDecisionFamily(
    const std::vector<LabelledPolicyDecision>& decisions) {
  std::map<PolicyDecisionLabels, uint64_t> summed;
  for (const LabelledPolicyDecision& d : decisions) summed[d.labels] += d.count;
  prometheus::MetricFamily family{
      .name = "sockmesh_policy_decisions_total",
      .help = "Authorization policy decisions, counted in the kernel on each side of a connection",
      .type = prometheus::MetricType::Counter};
  for (const auto& [l, count] : summed) {
    prometheus::ClientMetric m;
    m.label = {{"action", l.action},
               {"source_workload", l.source_workload},
               {"destination_workload", l.destination_workload},
               {"policy", l.policy},
               {"reporter", l.reporter}};
    m.counter.value = static_cast<double>(count);
    family.metric.push_back(std::move(m));
  }
  return family;
}

std::vector<prometheus::MetricFamily> PolicyMetricsCollector::Collect() const {
  absl::StatusOr<std::vector<LabelledPolicyDecision>> decisions = reader_();
  if (!decisions.ok()) return {};  // a scrape without the family beats a failed scrape
  return {PolicyDecisionFamily(*decisions)};
}

}  // namespace sockmesh::metrics
