// SPDX-License-Identifier: Apache-2.0
// Where a local workload's processes live in standalone mode: <mesh cgroup>/<namespace>/<name>.
// `sockmeshctl exec --workload NS/NAME` creates and enters that cgroup; the agent lists the tree to
// map a socket's cgroup id (bpf_get_current_cgroup_id) back to the workload it belongs to. On
// Kubernetes the pod's own cgroup plays this part and the Pod object names the workload.
#ifndef SOCKMESH_USERSPACE_AGENT_WORKLOAD_CGROUP_H_
#define SOCKMESH_USERSPACE_AGENT_WORKLOAD_CGROUP_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace sockmesh::agent {

struct WorkloadName {
  std::string namespace_name;
  std::string name;
  bool operator==(const WorkloadName&) const = default;
  std::string ToString() const { return namespace_name + "/" + name; }
};

// Parses "NS/NAME". Both parts must be Kubernetes DNS labels (lower-case alphanumerics and '-',
// 1..63 characters, starting and ending alphanumeric), so they are also safe directory names.
absl::StatusOr<WorkloadName> ParseWorkloadName(std::string_view text);

// <mesh_cgroup>/<namespace>/<name>.
std::string WorkloadCgroupPath(std::string_view mesh_cgroup, const WorkloadName& workload);

struct WorkloadCgroup {
  WorkloadName workload;
  std::string path;
  uint64_t cgroup_id = 0;  // what bpf_get_current_cgroup_id() returns for its processes
};

// Every <namespace>/<name> cgroup two levels below `mesh_cgroup` whose names parse as a workload.
// Directories that do not are skipped (they are not workloads; e.g. a test's own cgroup).
absl::StatusOr<std::vector<WorkloadCgroup>> ListWorkloadCgroups(const std::string& mesh_cgroup);

}  // namespace sockmesh::agent

#endif  // SOCKMESH_USERSPACE_AGENT_WORKLOAD_CGROUP_H_
