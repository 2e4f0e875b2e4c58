// SPDX-License-Identifier: Apache-2.0
// sockmesh_policy_decisions_total: the kernel's policy decisions (sm_policy_decisions_v1) with
// their numbers named, read at scrape time.
#ifndef SOCKMESH_USERSPACE_METRICS_POLICY_METRICS_H_
#define SOCKMESH_USERSPACE_METRICS_POLICY_METRICS_H_

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <compare>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace sockmesh::metrics {

struct PolicyDecisionLabels {
  std::string action;                // "allow", "deny", "audit"
  std::string source_workload;       // "ns/name", a principal, or "unknown" (the world)
  std::string destination_workload;  // "ns/name"
  // "ns/name" of the deciding policy; "no_allow_match" (denied: ALLOW policies select the
  // destination, none matched) or "no_allow_policy" (allowed: none selects it).
  std::string policy;
  std::string reporter;  // "source" (the client's connect) or "destination"
  auto operator<=>(const PolicyDecisionLabels&) const = default;
};

struct LabelledPolicyDecision {
  PolicyDecisionLabels labels;
  uint64_t count = 0;
};

using PolicyDecisionReader = std::function<absl::StatusOr<std::vector<LabelledPolicyDecision>>()>;

// One counter family; entries with equal labels are added up.
prometheus::MetricFamily PolicyDecisionFamily(const std::vector<LabelledPolicyDecision>& decisions);

class PolicyMetricsCollector : public prometheus::Collectable {
 public:
  explicit PolicyMetricsCollector(PolicyDecisionReader reader) : reader_(std::move(reader)) {}
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  PolicyDecisionReader reader_;
};

}  // namespace sockmesh::metrics

#endif  // SOCKMESH_USERSPACE_METRICS_POLICY_METRICS_H_
