// SPDX-License-Identifier: Apache-2.0
// The workload half of proto_conversion: workloads, the identity table and namespaces to and from
// the sockmesh.v1 messages, and their part of a Delta. proto_conversion.cc calls these for
// Snapshots and Deltas; they are public so tests can check them on their own.
#ifndef SOCKMESH_CONTROL_PLANE_MODEL_WORKLOAD_CONVERSION_H_
#define SOCKMESH_CONTROL_PLANE_MODEL_WORKLOAD_CONVERSION_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "control_plane/model/workload_model.h"
#include "sockmesh/v1/control_plane.pb.h"

namespace sockmesh::model {

v1::Workload ToProto(const Workload& workload);
// Validates: namespace and name set, known kind, principal equal to the one namespace and service
// account make, identity in the allocated range, addresses of 4 or 16 bytes, at most one per
// family.
absl::StatusOr<Workload> FromProto(const v1::Workload& workload);

void AddWorkloads(const WorkloadState& state, v1::Snapshot& out);
absl::StatusOr<WorkloadState> WorkloadsFromSnapshot(const v1::Snapshot& snapshot);

// Fills the workload fields of `out` with what turns `base` into `target`.
void AddWorkloadDelta(const WorkloadState& base, const WorkloadState& target, v1::Delta& out);
absl::Status ApplyWorkloadDelta(const v1::Delta& delta, WorkloadState& state);

// The table agrees with itself: every workload's identity is its principal's number in
// `identities`, every principal there has a workload, and no two principals share a number.
absl::Status CheckWorkloadState(const WorkloadState& state);

}  // namespace sockmesh::model

#endif  // SOCKMESH_CONTROL_PLANE_MODEL_WORKLOAD_CONVERSION_H_
