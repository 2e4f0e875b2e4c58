// SPDX-License-Identifier: Apache-2.0
// What the agent feeds sockmesh_policy_decisions_total with at scrape time: sm_policy_decisions_v1
// with endpoint, policy and identity numbers named from the applied policy and workloads.
#ifndef SOCKMESH_USERSPACE_AGENT_POLICY_METRICS_SOURCE_H_
#define SOCKMESH_USERSPACE_AGENT_POLICY_METRICS_SOURCE_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "control_plane/model/workload_model.h"
#include "sockmesh/v1/control_plane.pb.h"
#include "userspace/bpf/policy_decisions.h"
#include "userspace/metrics/policy_metrics.h"

namespace sockmesh::agent {

// Names of the numbers in policy decisions and denial events.
struct PolicyNames {
  std::map<uint32_t, std::string> endpoints;   // endpoint_id -> "ns/name"
  std::map<uint32_t, std::string> policies;    // policy_id -> "ns/name"
  std::map<uint32_t, std::string> identities;  // identity -> "ns/name" of its one workload, else
                                               // its principal
  std::string Endpoint(uint32_t id) const;
  std::string Policy(uint32_t id) const;
  std::string Identity(uint32_t id) const;  // "unknown" for 0 (the world) and unnamed numbers
};

PolicyNames NamePolicy(const v1::CompiledPolicy& policy, const model::WorkloadState& workloads);

// Pure: one labelled decision per kernel entry.
std::vector<metrics::LabelledPolicyDecision> LabelPolicyDecisions(
    const std::vector<bpf::PolicyDecisionCount>& decisions, const PolicyNames& names);

// The kernel entries whose endpoint or policy number `after` names differently from `before`
// (given to another workload or policy, or gone): their counts belong to what the number named
// before. Numbers `before` did not name (an agent that just started) are kept.
std::vector<sm_policy_decision_key> StaleDecisionKeys(
    const std::vector<bpf::PolicyDecisionCount>& decisions, const PolicyNames& before,
    const PolicyNames& after);

// Thread-safe: the control-plane thread sets the names, the metrics server reads. Setting new
// names deletes the stale kernel entries (StaleDecisionKeys): the control plane renumbers
// policies in (namespace, name) order on every change and reuses freed endpoint numbers, so
// without this a policy's or workload's counts would be reported under the next one's name.
class PolicyDecisionLabeler {
 public:
  explicit PolicyDecisionLabeler(int decisions_fd) : fd_(decisions_fd) {}
  void SetNames(PolicyNames names);
  absl::StatusOr<std::vector<metrics::LabelledPolicyDecision>> Read() const;

 private:
  int fd_;
  mutable absl::Mutex mu_;
  PolicyNames names_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sockmesh::agent

#endif  // SOCKMESH_USERSPACE_AGENT_POLICY_METRICS_SOURCE_H_
