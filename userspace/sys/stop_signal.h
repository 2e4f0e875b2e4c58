// SPDX-License-Identifier: Apache-2.0
#ifndef SOCKMESH_USERSPACE_SYS_STOP_SIGNAL_H_
#define SOCKMESH_USERSPACE_SYS_STOP_SIGNAL_H_

#include <atomic>

namespace sockmesh::sys {

// Installs SIGTERM and SIGINT handlers (without SA_RESTART, so a blocking wait returns EINTR) and
// returns the flag they set. A daemon's loop polls the flag and shuts down in an orderly way.
const std::atomic<bool>& InstallStopSignalHandlers();

}  // namespace sockmesh::sys

#endif  // SOCKMESH_USERSPACE_SYS_STOP_SIGNAL_H_
