// SPDX-License-Identifier: Apache-2.0
#include "userspace/ctl/cgroup_exec.h"

#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "userspace/agent/cgroup.h"
#include "userspace/agent/workload_cgroup.h"
#include "userspace/sys/errno_status.h"

namespace sockmesh::ctl {

namespace fs = std::filesystem;

absl::StatusOr<std::string> ResolveExecCgroup(const std::string& arg, const std::string& mount) {
  auto refuse_root = [&] {
    return absl::InvalidArgumentError(absl::StrCat(
        "--cgroup: \"", arg, "\" is the root cgroup (", mount,
        "); refusing to run a command there: name a child cgroup, e.g. the one sockmesh-agent "
        "--cgroup attached to"));
  };
  // "/" is how /proc/<pid>/cgroup spells the root; users copy it from there.
  if (fs::path(arg).lexically_normal() == "/") return refuse_root();
  absl::StatusOr<std::string> path = agent::ResolveCgroupPath(arg, mount);
  if (!path.ok()) return path.status();
  // Same directory, however the mount point was spelled (trailing slash, symlink).
  std::error_code ec;
  if (fs::equivalent(*path, mount, ec)) return refuse_root();
  if (!fs::exists(fs::path(*path) / "cgroup.procs", ec)) {
    return absl::NotFoundError(
        absl::StrCat("--cgroup: ", *path, " is not an existing cgroup (no cgroup.procs)"));
  }
  return path;
}

absl::StatusOr<std::string> EnsureWorkloadCgroup(const std::string& mesh_cgroup,
                                                 const std::string& workload) {
  absl::StatusOr<agent::WorkloadName> name = agent::ParseWorkloadName(workload);
  if (!name.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--workload: ", name.status().message()));
  }
  const std::string path = agent::WorkloadCgroupPath(mesh_cgroup, *name);
  std::error_code ec;
  fs::create_directories(path, ec);  // cgroupfs: mkdir makes a child cgroup
  if (ec) return sys::ErrnoToStatus(ec.value(), absl::StrCat("--workload: create cgroup ", path));
  return path;
}

absl::Status EnterCgroup(const std::string& cgroup) {
  return agent::JoinCgroup(cgroup, ::getpid());
}

absl::Status ExecCommand(const std::vector<std::string>& command) {
  if (command.empty()) return absl::InvalidArgumentError("no command to run");
  std::vector<char*> argv;
  argv.reserve(command.size() + 1);
  for (const std::string& a : command) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  ::execvp(argv[0], argv.data());
  return sys::ErrnoToStatus(errno, absl::StrCat("exec ", command[0]));
}

}  // namespace sockmesh::ctl
