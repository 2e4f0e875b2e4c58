// SPDX-License-Identifier: Apache-2.0
#include "control_plane/sources/errno_status.h"

#include <cerrno>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"

namespace sockmesh::sources {

absl::Status ErrnoToStatus(int err, std::string_view what) {
  const std::string message =
      absl::StrCat(absl::string_view(what.data(), what.size()), ": ", std::strerror(err));
  switch (err) {
    case ENOENT:
    case ENOTDIR:
      return absl::NotFoundError(message);
    case EACCES:
    case EPERM:
      return absl::PermissionDeniedError(message);
    case EMFILE:
    case ENFILE:
    case ENOSPC:
    case ENOMEM:
      return absl::ResourceExhaustedError(message);
    case EISDIR:
    case ELOOP:
      return absl::FailedPreconditionError(message);
    default:
      return absl::InternalError(message);
  }
}

}  // namespace sockmesh::sources
