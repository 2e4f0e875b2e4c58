// SPDX-License-Identifier: Apache-2.0
#ifndef SOCKMESH_TESTS_SUPPORT_SCOPED_NETNS_H_
#define SOCKMESH_TESTS_SUPPORT_SCOPED_NETNS_H_

#include "absl/status/statusor.h"
#include "userspace/sys/unique_fd.h"

namespace sockmesh::testing {

// Moves the calling thread into a new, private network namespace with only `lo` (up), and back on
// destruction; the namespace disappears with its last thread and socket. Threads the caller starts
// meanwhile inherit it. Used where an address must be unreachable without the hook (IPv6 VIPs).
class ScopedNetns {
 public:
  static absl::StatusOr<ScopedNetns> Enter();
  ScopedNetns(ScopedNetns&&) noexcept = default;
  ScopedNetns& operator=(ScopedNetns&&) = delete;
  ~ScopedNetns();

 private:
  explicit ScopedNetns(sys::UniqueFd original) : original_(std::move(original)) {}
  sys::UniqueFd original_;
};

}  // namespace sockmesh::testing

#endif  // SOCKMESH_TESTS_SUPPORT_SCOPED_NETNS_H_
