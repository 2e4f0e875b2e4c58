// SPDX-License-Identifier: Apache-2.0
// Compiles TrafficPolicies into the Service entries of a DesiredState: the balancing algorithm,
// the per-backend connection limit and outlier detection replace what the Service's annotations
// said, and a subset split becomes backend weights (a subset's weight spread evenly over its
// backends; a backend belongs to the subset whose labels its workload, the Pod or WorkloadEntry
// with the backend's address, carries).
//
// Each policy gets status conditions shaped like metav1.Condition: Accepted (False when another
// policy already governs the same Service: the first by namespace/name wins) and ResolvedRefs
// (False when spec.host names no Service with a frontend, or a subset of the split selects no
// backend). A policy that is not accepted or whose host is missing changes nothing.
#ifndef SOCKMESH_CONTROL_PLANE_SOURCES_TRAFFIC_POLICY_COMPILER_H_
#define SOCKMESH_CONTROL_PLANE_SOURCES_TRAFFIC_POLICY_COMPILER_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "control_plane/model/service_model.h"
#include "control_plane/sources/traffic_policy_manifest.h"

namespace sockmesh::sources {

// metav1.Condition's fields that sockmesh fills (no observedGeneration or transition time: a
// standalone file has neither).
struct PolicyCondition {
  std::string type;    // "Accepted", "ResolvedRefs"
  bool status = true;  // "True" / "False"
  std::string reason;  // CamelCase, e.g. "HostNotFound"
  std::string message;
  bool operator==(const PolicyCondition&) const = default;
};

struct TrafficPolicyStatus {
  std::string namespace_name;
  std::string name;
  std::string source;
  std::vector<PolicyCondition> conditions;
  bool operator==(const TrafficPolicyStatus&) const = default;
};

// The share of one backend in a weighted subset: weight percent * kSplitWeightScale / backends,
// so 100% on one backend is 60000 (under the model's 65535 limit) and shares stay exact to 1/600.
inline constexpr uint32_t kSplitWeightScale = 600;

// Applies `policies` to `state` (whose workloads must already be built) and returns one status
// per policy, sorted by namespace/name. InvalidArgument when one policy is defined twice.
absl::StatusOr<std::vector<TrafficPolicyStatus>> ApplyTrafficPolicies(
    const std::vector<TrafficPolicyManifest>& policies, model::DesiredState& state);

}  // namespace sockmesh::sources

#endif  // SOCKMESH_CONTROL_PLANE_SOURCES_TRAFFIC_POLICY_COMPILER_H_
