// SPDX-License-Identifier: Apache-2.0
// Turns parsed AuthorizationPolicies into the state's CompiledPolicy and every policy's status
// conditions (Accepted, ResolvedRefs; metav1.Condition's type, status, reason, message and
// observedGeneration). Refused policies are left out of the compiled policy whole and reported.
#ifndef SOCKMESH_CONTROL_PLANE_SOURCES_AUTHORIZATION_POLICY_BUILDER_H_
#define SOCKMESH_CONTROL_PLANE_SOURCES_AUTHORIZATION_POLICY_BUILDER_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "control_plane/model/service_model.h"
#include "control_plane/sources/authorization_policy_parser.h"

namespace sockmesh::sources {

inline constexpr char kConditionAccepted[] = "Accepted";
inline constexpr char kConditionResolvedRefs[] = "ResolvedRefs";

// Fills state.policy and state.policy_status from `policies` and state.workloads (which must be
// built); `previous` keeps workloads on their endpoint ids. InvalidArgument, naming both files,
// when one namespace/name is defined twice.
absl::Status BuildAuthorizationPolicies(const std::vector<AuthorizationPolicyManifest>& policies,
                                        const model::DesiredState& previous,
                                        model::DesiredState& state);

// One line per policy for logs and `sockmeshctl validate`: "AuthorizationPolicy ns/name (file):
// Accepted=True ResolvedRefs=False/NoMatchingWorkloads: <message>".
std::string DescribePolicyStatus(const model::PolicyStatus& status);

// The refusal of a policy as an error line, "<file>: AuthorizationPolicy ns/name: <message>", or
// "" when the policy is accepted.
std::string PolicyRefusal(const model::PolicyStatus& status);

}  // namespace sockmesh::sources

#endif  // SOCKMESH_CONTROL_PLANE_SOURCES_AUTHORIZATION_POLICY_BUILDER_H_
