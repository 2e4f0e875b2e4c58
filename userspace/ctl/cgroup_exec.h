// SPDX-License-Identifier: Apache-2.0
// `sockmeshctl exec --cgroup PATH [--workload NS/NAME] -- CMD...`: runs a command inside the
// cgroup the datapath is attached to (or a workload's cgroup below it), so its connect()s go
// through the mesh without touching the caller's own cgroup.
#ifndef SOCKMESH_USERSPACE_CTL_CGROUP_EXEC_H_
#define SOCKMESH_USERSPACE_CTL_CGROUP_EXEC_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace sockmesh::ctl {

// Resolves --cgroup as the agent does (absolute inside the cgroup2 mount `mount`, or relative to
// it) and checks it is an existing cgroup. Refuses the root cgroup, whichever way it is spelled
// ("/", ".", the mount point): moving a process there would take it out of every limit it has.
absl::StatusOr<std::string> ResolveExecCgroup(const std::string& arg, const std::string& mount);

// `--workload NS/NAME` under the resolved mesh cgroup: <mesh>/<NS>/<NAME> (the agent's workload
// convention, userspace/agent/workload_cgroup.h), created when missing. Returns its path.
absl::StatusOr<std::string> EnsureWorkloadCgroup(const std::string& mesh_cgroup,
                                                 const std::string& workload);

// Moves this process into `cgroup` (an already resolved path).
absl::Status EnterCgroup(const std::string& cgroup);

// execvp()s `command`. Returns only on failure.
absl::Status ExecCommand(const std::vector<std::string>& command);

}  // namespace sockmesh::ctl

#endif  // SOCKMESH_USERSPACE_CTL_CGROUP_EXEC_H_
