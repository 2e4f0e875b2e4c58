// SPDX-License-Identifier: Apache-2.0
#ifndef SOCKMESH_TESTS_SUPPORT_SCOPED_CGROUP_H_
#define SOCKMESH_TESTS_SUPPORT_SCOPED_CGROUP_H_

#include <string>

#include "absl/status/statusor.h"

namespace sockmesh::testing {

// A throwaway child cgroup: <cgroup2 mount>/sockmesh-test-<pid>-<n>. Join() moves this process in;
// the destructor moves it back to where it was and removes the directory, also when a test fails.
// Create() first removes stale empty sockmesh-test-* cgroups left by a crashed run.
class ScopedCgroup {
 public:
  static absl::StatusOr<ScopedCgroup> Create();
  ScopedCgroup(ScopedCgroup&& other) noexcept;
  ScopedCgroup& operator=(ScopedCgroup&&) = delete;
  ~ScopedCgroup();

  const std::string& path() const { return path_; }
  // Moves the calling process (all its threads) into the cgroup.
  absl::Status Join();
  // Moves it back to the cgroup it was in before Join().
  absl::Status Leave();

 private:
  ScopedCgroup(std::string path, std::string home)
      : path_(std::move(path)), home_(std::move(home)) {}
  std::string path_;
  std::string home_;  // the process's cgroup before Join()
  bool joined_ = false;
};

// This process's cgroup v2 directory (absolute, from /proc/self/cgroup); "" when unknown.
std::string CurrentCgroup();

}  // namespace sockmesh::testing

#endif  // SOCKMESH_TESTS_SUPPORT_SCOPED_CGROUP_H_
