// SPDX-License-Identifier: Apache-2.0
#include "userspace/agent/cgroup.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "userspace/sys/errno_status.h"

namespace sockmesh::agent {

namespace fs = std::filesystem;

absl::StatusOr<std::string> FindCgroup2Mount(const std::string& mounts) {
  std::ifstream in(mounts);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", mounts));
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string source, target, type;
    if (fields >> source >> target >> type && type == "cgroup2") return target;
  }
  return absl::FailedPreconditionError(
      absl::StrCat("no cgroup2 file system in ", mounts, ": sockmesh needs cgroup v2"));
}

absl::StatusOr<std::string> ResolveCgroupPath(const std::string& arg, const std::string& mount) {
  if (arg.empty()) return absl::InvalidArgumentError("--cgroup: empty path");
  fs::path mount_path = fs::path(mount).lexically_normal();
  fs::path p = fs::path(arg).is_absolute() ? fs::path(arg) : mount_path / arg;
  p = p.lexically_normal();
  std::string s = p.string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  std::string m = mount_path.string();
  while (m.size() > 1 && m.back() == '/') m.pop_back();
  if (s != m && !absl::StartsWith(s, m + "/")) {
    return absl::InvalidArgumentError(
        absl::StrCat("--cgroup: \"", arg, "\" is not inside the cgroup2 mount ", m));
  }
  return s;
}

absl::Status EnsureCgroup(const std::string& path) {
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec) return sys::ErrnoToStatus(ec.value(), absl::StrCat("create cgroup ", path));
  if (!fs::exists(fs::path(path) / "cgroup.procs")) {
    return absl::FailedPreconditionError(absl::StrCat(path, " is not a cgroup v2 directory"));
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> CgroupId(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return sys::ErrnoToStatus(errno, absl::StrCat("stat ", path));
  return static_cast<uint64_t>(st.st_ino);
}

absl::StatusOr<sys::UniqueFd> OpenCgroup(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return sys::ErrnoToStatus(errno, absl::StrCat("open cgroup ", path));
  return sys::UniqueFd(fd);
}

absl::Status JoinCgroup(const std::string& path, pid_t pid) {
  std::string procs = (fs::path(path) / "cgroup.procs").string();
  int fd = ::open(procs.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return sys::ErrnoToStatus(errno, absl::StrCat("open ", procs));
  sys::UniqueFd owner(fd);
  std::string text = std::to_string(pid);
  if (::write(fd, text.data(), text.size()) < 0) {
    return sys::ErrnoToStatus(errno, absl::StrCat("move pid ", pid, " into ", path));
  }
  return absl::OkStatus();
}

}  // namespace sockmesh::agent
