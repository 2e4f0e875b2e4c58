// SPDX-License-Identifier: Apache-2.0
// An IP address as the model holds it (services, backends and workloads alike).
#ifndef SOCKMESH_CONTROL_PLANE_MODEL_IP_ADDRESS_H_
#define SOCKMESH_CONTROL_PLANE_MODEL_IP_ADDRESS_H_

#include <array>
#include <compare>
#include <cstdint>
#include <iosfwd>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace sockmesh::model {

// An IPv4 or IPv6 address in network byte order. IPv4 uses the first 4 bytes; the rest stay zero.
struct IpAddress {
  uint8_t family = 0;  // 4 or 6; 0 means unset.
  std::array<uint8_t, 16> bytes{};

  static absl::StatusOr<IpAddress> Parse(std::string_view text);
  std::string ToString() const;
  bool is_v4() const { return family == 4; }
  bool is_v6() const { return family == 6; }
  auto operator<=>(const IpAddress&) const = default;
};

// Stream form (same text as ToString) so GoogleTest and logs print addresses, not byte arrays.
std::ostream& operator<<(std::ostream& os, const IpAddress& ip);

}  // namespace sockmesh::model

#endif  // SOCKMESH_CONTROL_PLANE_MODEL_IP_ADDRESS_H_
