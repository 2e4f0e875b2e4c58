// SPDX-License-Identifier: Apache-2.0
#include "services/platform/service_address.h"

#include <cctype>
#include <cstdlib>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace sockmesh::platform {

std::string ServiceEnvPrefix(std::string_view service) {
  std::string prefix;
  for (char c : service) {
    prefix += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return prefix;
}

absl::StatusOr<std::string> ResolveServiceAddress(std::string_view service,
                                                  std::string_view flag_name,
                                                  std::string_view flag_value, int default_port) {
  if (!flag_value.empty()) {
    absl::StatusOr<HostPort> parsed = SplitHostPort(flag_name, flag_value);
    if (!parsed.ok()) return parsed.status();
    return std::string(flag_value);
  }
  const std::string prefix = ServiceEnvPrefix(service);
  const std::string host_var = absl::StrCat(prefix, "_SERVICE_HOST");
  const std::string port_var = absl::StrCat(prefix, "_SERVICE_PORT");
  const char* host = std::getenv(host_var.c_str());
  if (host == nullptr || *host == '\0') {
    return absl::InvalidArgumentError(absl::StrCat("no address for service ", std::string(service),
                                                   ": pass ", std::string(flag_name), " or set ",
                                                   host_var, " (and ", port_var, ")"));
  }
  const char* port_text = std::getenv(port_var.c_str());
  int port = default_port;
  if (port_text != nullptr && *port_text != '\0' &&
      (!absl::SimpleAtoi(port_text, &port) || port < 1 || port > 65535)) {
    return absl::InvalidArgumentError(
        absl::StrCat(port_var, ": invalid value \"", port_text, "\": must be an integer 1-65535"));
  }
  const std::string host_text = host;
  const bool v6 = host_text.find(':') != std::string::npos;
  return absl::StrCat(v6 ? "[" : "", host_text, v6 ? "]" : "", ":", port);
}

absl::StatusOr<HostPort> SplitHostPort(std::string_view what, std::string_view text) {
  const size_t colon = text.rfind(':');
  HostPort out;
  if (colon == std::string_view::npos || colon == 0 ||
      !absl::SimpleAtoi(std::string(text.substr(colon + 1)), &out.port) || out.port < 1 ||
      out.port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(std::string(what), ": invalid value \"",
                                                   std::string(text),
                                                   "\": must be HOST:PORT with a port 1-65535"));
  }
  std::string_view host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  out.host = std::string(host);
  return out;
}

}  // namespace sockmesh::platform
