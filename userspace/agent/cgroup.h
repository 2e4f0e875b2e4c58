// SPDX-License-Identifier: Apache-2.0
// cgroup v2 discovery and the attach-point checks. The mount point differs between machines
// (/sys/fs/cgroup, /sys/fs/cgroup/unified), so it is always read from /proc/mounts.
#ifndef SOCKMESH_USERSPACE_AGENT_CGROUP_H_
#define SOCKMESH_USERSPACE_AGENT_CGROUP_H_

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "userspace/sys/unique_fd.h"

namespace sockmesh::agent {

// The cgroup2 mount point from /proc/mounts (`mounts` lets tests pass their own file).
absl::StatusOr<std::string> FindCgroup2Mount(const std::string& mounts = "/proc/mounts");

// Resolves a --cgroup argument: an absolute path must lie inside the cgroup2 mount; a relative path
// is taken relative to it. The result is normalised (no "..", no trailing slash).
absl::StatusOr<std::string> ResolveCgroupPath(const std::string& arg, const std::string& mount);

// Creates the cgroup directory (and parents) when missing.
absl::Status EnsureCgroup(const std::string& path);

// The kernel's cgroup id (the directory's inode number on cgroup2), as bpf_link_info reports it.
absl::StatusOr<uint64_t> CgroupId(const std::string& path);

absl::StatusOr<sys::UniqueFd> OpenCgroup(const std::string& path);

// Moves a process into the cgroup.
absl::Status JoinCgroup(const std::string& path, pid_t pid);

}  // namespace sockmesh::agent

#endif  // SOCKMESH_USERSPACE_AGENT_CGROUP_H_
