// SPDX-License-Identifier: Apache-2.0
// The workloads and identities an agent last applied, as a file for `sockmeshctl identities`. The
// kernel maps hold only numbers; this file gives them names (principals, workloads). It is the
// model's own wire form (a sockmesh.v1.Snapshot holding only the workload fields) in protobuf
// JSON, written atomically (temporary file, then rename) so a reader never sees half of it.
#ifndef SOCKMESH_USERSPACE_AGENT_WORKLOAD_STATUS_FILE_H_
#define SOCKMESH_USERSPACE_AGENT_WORKLOAD_STATUS_FILE_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "control_plane/model/workload_model.h"
#include "sockmesh/v1/control_plane.pb.h"

namespace sockmesh::agent {

// Where an instance's file lives: <run_dir>/<instance>/workloads.json.
inline constexpr char kDefaultRunDir[] = "/run/sockmesh";
std::string WorkloadStatusPath(const std::string& run_dir, const std::string& instance);

// `policy` adds the names of the applied authorization policy (its policies and endpoints; the
// rows are left out) for `sockmeshctl monitor`.
absl::Status WriteWorkloadStatus(const std::string& path, const model::WorkloadState& state,
                                 const v1::CompiledPolicy& policy = v1::CompiledPolicy());
// Removes the instance's file and directory (sockmesh-agent --cleanup); absent is fine.
absl::Status RemoveWorkloadStatus(const std::string& run_dir, const std::string& instance);
// NotFound when the agent has not written one (yet).
absl::StatusOr<model::WorkloadState> ReadWorkloadStatus(const std::string& path);
// The policy names the file holds (policies and endpoints); NotFound as above.
absl::StatusOr<v1::CompiledPolicy> ReadPolicyStatus(const std::string& path);

}  // namespace sockmesh::agent

#endif  // SOCKMESH_USERSPACE_AGENT_WORKLOAD_STATUS_FILE_H_
