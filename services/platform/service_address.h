// SPDX-License-Identifier: Apache-2.0
// How a platform service finds another one: by its service address (the VIP the mesh balances),
// from a flag or from Kubernetes-style environment variables, never by a backend's address.
#ifndef SOCKMESH_SERVICES_PLATFORM_SERVICE_ADDRESS_H_
#define SOCKMESH_SERVICES_PLATFORM_SERVICE_ADDRESS_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace sockmesh::platform {

// "USER" for "user", "ORDER_DB" for "order-db": the prefix Kubernetes gives a Service's variables.
std::string ServiceEnvPrefix(std::string_view service);

// The address to dial for `service`: `flag_value` when it is not empty, else
// "$<PREFIX>_SERVICE_HOST:$<PREFIX>_SERVICE_PORT" (port `default_port` when only the host is set).
// InvalidArgument naming the flag and the variables when neither is given.
absl::StatusOr<std::string> ResolveServiceAddress(std::string_view service,
                                                  std::string_view flag_name,
                                                  std::string_view flag_value, int default_port);

// Splits "HOST:PORT" or "[V6]:PORT"; InvalidArgument naming `what` and the text otherwise.
struct HostPort {
  std::string host;
  int port = 0;
};
absl::StatusOr<HostPort> SplitHostPort(std::string_view what, std::string_view text);

}  // namespace sockmesh::platform

#endif  // SOCKMESH_SERVICES_PLATFORM_SERVICE_ADDRESS_H_
