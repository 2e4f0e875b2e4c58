// SPDX-License-Identifier: Apache-2.0
#ifndef SOCKMESH_USERSPACE_SYS_ERRNO_STATUS_H_
#define SOCKMESH_USERSPACE_SYS_ERRNO_STATUS_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace sockmesh::sys {

// Maps an errno (positive, or the negative value libbpf returns) to an absl::Status once, so every
// caller agrees: ENOENT/ENOTDIR -> NotFound, E2BIG/ENOSPC/ENOMEM/EMFILE/ENFILE ->
// ResourceExhausted, EEXIST -> AlreadyExists, EPERM/EACCES -> PermissionDenied, EINVAL ->
// InvalidArgument, others -> Internal. The message is "<what>: <strerror>".
absl::Status ErrnoToStatus(int err, absl::string_view what);

}  // namespace sockmesh::sys

#endif  // SOCKMESH_USERSPACE_SYS_ERRNO_STATUS_H_
