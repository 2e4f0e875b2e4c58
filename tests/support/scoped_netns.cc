// SPDX-License-Identifier: Apache-2.0
#include "tests/support/scoped_netns.h"

#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "userspace/sys/errno_status.h"

namespace sockmesh::testing {
namespace {

absl::Status BringUpLoopback() {
  sys::UniqueFd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!sock.valid()) return sys::ErrnoToStatus(errno, "socket for SIOCSIFFLAGS");
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (::ioctl(sock.get(), SIOCGIFFLAGS, &ifr) != 0)
    return sys::ErrnoToStatus(errno, "get lo flags");
  ifr.ifr_flags |= IFF_UP;
  if (::ioctl(sock.get(), SIOCSIFFLAGS, &ifr) != 0) return sys::ErrnoToStatus(errno, "set lo up");
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ScopedNetns> ScopedNetns::Enter() {
  sys::UniqueFd original(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  if (!original.valid()) return sys::ErrnoToStatus(errno, "open current netns");
  if (::unshare(CLONE_NEWNET) != 0) return sys::ErrnoToStatus(errno, "unshare(CLONE_NEWNET)");
  ScopedNetns ns(std::move(original));
  if (absl::Status s = BringUpLoopback(); !s.ok()) return s;
  return ns;
}

ScopedNetns::~ScopedNetns() {
  if (original_.valid()) ::setns(original_.get(), CLONE_NEWNET);
}

}  // namespace sockmesh::testing
