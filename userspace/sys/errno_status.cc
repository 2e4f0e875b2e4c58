// SPDX-License-Identifier: Apache-2.0
#include "userspace/sys/errno_status.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace sockmesh::sys {

absl::Status ErrnoToStatus(int err, absl::string_view what) {
  err = std::abs(err);
  std::string msg = absl::StrCat(what, ": ", std::strerror(err));
  switch (err) {
    case 0:
      return absl::OkStatus();
    case ENOENT:
    case ENOTDIR:
      return absl::NotFoundError(msg);
    case E2BIG:
    case ENOSPC:
    case ENOMEM:
    case EMFILE:
    case ENFILE:
      return absl::ResourceExhaustedError(msg);
    case EEXIST:
      return absl::AlreadyExistsError(msg);
    case EPERM:
    case EACCES:
      return absl::PermissionDeniedError(msg);
    case EINVAL:
      return absl::InvalidArgumentError(msg);
    case EOPNOTSUPP:
      return absl::UnimplementedError(msg);
    default:
      return absl::InternalError(msg);
  }
}

}  // namespace sockmesh::sys
