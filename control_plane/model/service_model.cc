// SPDX-License-Identifier: Apache-2.0
#include "control_plane/model/service_model.h"

#include <arpa/inet.h>

#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace sockmesh::model {
namespace {

// Debian builds Abseil with its own string_view (ABSL_OPTION_USE_STD_STRING_VIEW 0), which does not
// convert from the std::string_view this header uses.
absl::string_view ToAbsl(std::string_view s) { return absl::string_view(s.data(), s.size()); }

}  // namespace

absl::StatusOr<IpAddress> IpAddress::Parse(std::string_view text) {
  // inet_pton needs a NUL-terminated string; a string_view may not be one.
  const std::string copy(text);
  IpAddress ip;
  // inet_pton only accepts dotted-quad IPv4 (no "10.1", no octal, no leading zeros) and plain IPv6
  // without a zone suffix, which is exactly what a cluster IP or endpoint address may be.
  if (inet_pton(AF_INET, copy.c_str(), ip.bytes.data()) == 1) {
    ip.family = 4;
    return ip;
  }
  if (inet_pton(AF_INET6, copy.c_str(), ip.bytes.data()) == 1) {
    ip.family = 6;
    return ip;
  }
  return absl::InvalidArgumentError(absl::StrCat("invalid IP address \"",
                                                 absl::Utf8SafeCHexEscape(ToAbsl(text)),
                                                 "\": must be an IPv4 or IPv6 address"));
}

std::string IpAddress::ToString() const {
  char buf[INET6_ADDRSTRLEN] = {};
  const int af = is_v4() ? AF_INET : is_v6() ? AF_INET6 : AF_UNSPEC;
  if (af == AF_UNSPEC || inet_ntop(af, bytes.data(), buf, sizeof(buf)) == nullptr) {
    return "unset";
  }
  return buf;
}

std::string_view ProtocolName(Protocol p) {
  switch (p) {
    case Protocol::kTcp:
      return "TCP";
    case Protocol::kUdp:
      return "UDP";
  }
  return "unknown";
}

std::string_view LbAlgorithmName(LbAlgorithm a) {
  switch (a) {
    case LbAlgorithm::kRandom:
      return "random";
    case LbAlgorithm::kMaglev:
      return "maglev";
    case LbAlgorithm::kLeastConnections:
      return "least-connections";
  }
  return "unknown";
}

std::string_view SessionAffinityName(SessionAffinity a) {
  switch (a) {
    case SessionAffinity::kNone:
      return "None";
    case SessionAffinity::kClientIP:
      return "ClientIP";
  }
  return "unknown";
}

namespace {

// IPv6 addresses are bracketed before ":port" so the port's colon is not read as part of them.
std::string HostPort(const IpAddress& ip, uint16_t port) {
  if (ip.is_v6()) return absl::StrCat("[", ip.ToString(), "]:", port);
  return absl::StrCat(ip.ToString(), ":", port);
}

}  // namespace

std::string Frontend::ToString() const {
  return absl::StrCat(HostPort(vip, port), "/", ToAbsl(ProtocolName(protocol)));
}

std::string Backend::ToString() const {
  return absl::StrCat(HostPort(address, port), " (weight ", weight, ")");
}

std::ostream& operator<<(std::ostream& os, const IpAddress& ip) { return os << ip.ToString(); }
std::ostream& operator<<(std::ostream& os, const Frontend& frontend) {
  return os << frontend.ToString();
}
std::ostream& operator<<(std::ostream& os, const Backend& backend) {
  return os << backend.ToString();
}

}  // namespace sockmesh::model
