// SPDX-License-Identifier: Apache-2.0
// The compiled-policy part of proto_conversion: CompiledPolicy to and from sockmesh.v1, and its
// part of a Delta (present only when it changed, then whole).
#ifndef SOCKMESH_CONTROL_PLANE_MODEL_POLICY_CONVERSION_H_
#define SOCKMESH_CONTROL_PLANE_MODEL_POLICY_CONVERSION_H_

#include "absl/status/statusor.h"
#include "control_plane/model/authorization_policy.h"
#include "sockmesh/v1/control_plane.pb.h"

namespace sockmesh::model {

v1::CompiledPolicy ToProto(const CompiledPolicy& policy);
// Validates what the datapath relies on: ids >= 1 and unique (policies, sets, endpoints), every
// row's policy ids and every endpoint's set id refer to an entry, rows unique on (source, port,
// prefix), ports <= 65535, prefixes of 4 or 16 bytes with a length the family allows, endpoint
// addresses of 4 or 16 bytes. InvalidArgument names the entry and field.
absl::StatusOr<CompiledPolicy> FromProto(const v1::CompiledPolicy& policy);

// Policy statuses for ListPolicies; FromProto accepts what ToProto writes (unknown actions become
// ALLOW, "True" is the only true status).
v1::PolicyStatus ToProto(const PolicyStatus& status);
PolicyStatus FromProto(const v1::PolicyStatus& status);

// Sets out.policy to `target` when it differs from `base`.
void AddPolicyDelta(const CompiledPolicy& base, const CompiledPolicy& target, v1::Delta& out);

}  // namespace sockmesh::model

#endif  // SOCKMESH_CONTROL_PLANE_MODEL_POLICY_CONVERSION_H_
