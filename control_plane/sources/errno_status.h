// SPDX-License-Identifier: Apache-2.0
// The one place the manifest sources turn an errno into an absl::Status, so every caller maps the
// same errno to the same code.
#ifndef SOCKMESH_CONTROL_PLANE_SOURCES_ERRNO_STATUS_H_
#define SOCKMESH_CONTROL_PLANE_SOURCES_ERRNO_STATUS_H_

#include <string_view>

#include "absl/status/status.h"

namespace sockmesh::sources {

// "<what>: <strerror>" with ENOENT/ENOTDIR -> NotFound, EACCES/EPERM -> PermissionDenied,
// EMFILE/ENFILE/ENOSPC/ENOMEM -> ResourceExhausted (inotify's watch and instance limits report
// these), EISDIR/ELOOP -> FailedPrecondition, anything else -> Internal.
absl::Status ErrnoToStatus(int err, std::string_view what);

}  // namespace sockmesh::sources

#endif  // SOCKMESH_CONTROL_PLANE_SOURCES_ERRNO_STATUS_H_
