// SPDX-License-Identifier: Apache-2.0
// Listen addresses as given on the command line: "127.0.0.1:8080" or "[::1]:8080".
#ifndef SOCKMESH_SERVICES_ECHO_SOCKET_ADDRESS_H_
#define SOCKMESH_SERVICES_ECHO_SOCKET_ADDRESS_H_

#include <sys/socket.h>

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace sockmesh::echo {

// An IPv4 or IPv6 socket address, ready for bind().
struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;

  int family() const { return storage.ss_family; }
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
  sockaddr* get() { return reinterpret_cast<sockaddr*>(&storage); }
};

// Parses "A.B.C.D:PORT" or "[IPV6]:PORT" with a numeric address and a port in 0..65535 (0 asks the
// kernel for an ephemeral port). Host names are refused: a listener needs one definite address.
absl::StatusOr<SocketAddress> ParseSocketAddress(std::string_view text);

// "A.B.C.D:PORT" or "[IPV6]:PORT".
std::string FormatSocketAddress(const SocketAddress& address);

}  // namespace sockmesh::echo

#endif  // SOCKMESH_SERVICES_ECHO_SOCKET_ADDRESS_H_
