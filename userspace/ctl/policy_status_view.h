// SPDX-License-Identifier: Apache-2.0
// `sockmeshctl policies`: the AuthorizationPolicies the control plane holds, with their status
// conditions (ListPolicies), and the same view for `sockmeshctl validate`.
#ifndef SOCKMESH_USERSPACE_CTL_POLICY_STATUS_VIEW_H_
#define SOCKMESH_USERSPACE_CTL_POLICY_STATUS_VIEW_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "control_plane/model/authorization_policy.h"
#include "nlohmann/json.hpp"
#include "sockmesh/v1/control_plane.pb.h"

namespace sockmesh::ctl {

// Calls ListPolicies on the control plane at `address`. Unavailable / DeadlineExceeded name it.
absl::StatusOr<v1::ListPoliciesResponse> FetchPolicies(const std::string& address,
                                                       absl::Duration timeout);

// NAME, NAMESPACE, ACTION, ACCEPTED, REASON (of the first condition that is False, else the
// ResolvedRefs reason), SELECTED WORKLOADS (up to three names, then "+N").
std::string FormatPolicyTable(const std::vector<model::PolicyStatus>& policies);
// {"namespace", "name", "action", "source", "conditions": [metav1.Condition fields],
//  "selectedWorkloads": ["ns/name", ...]}
nlohmann::ordered_json PolicyStatusJson(const model::PolicyStatus& policy);
std::string FormatPoliciesJson(uint64_t version, const std::vector<model::PolicyStatus>& policies);

}  // namespace sockmesh::ctl

#endif  // SOCKMESH_USERSPACE_CTL_POLICY_STATUS_VIEW_H_
