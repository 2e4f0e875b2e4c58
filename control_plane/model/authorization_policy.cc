// SPDX-License-Identifier: Apache-2.0
#include "control_plane/model/authorization_policy.h"

#include "absl/strings/str_cat.h"

namespace sockmesh::model {
namespace {

// Whether the first `len` bits of `a` and `b` agree.
bool SameLeadingBits(const IpAddress& a, const IpAddress& b, uint8_t len) {
  const size_t whole = len / 8;
  for (size_t i = 0; i < whole; ++i) {
    if (a.bytes[i] != b.bytes[i]) return false;
  }
  const uint8_t rest = len % 8;
  if (rest == 0) return true;
  const uint8_t mask = static_cast<uint8_t>(0xFF << (8 - rest));
  return (a.bytes[whole] & mask) == (b.bytes[whole] & mask);
}

}  // namespace

std::string_view PolicyActionName(PolicyAction action) {
  switch (action) {
    case PolicyAction::kAllow:
      return "ALLOW";
    case PolicyAction::kDeny:
      return "DENY";
    case PolicyAction::kAudit:
      return "AUDIT";
  }
  return "?";
}

std::string IpPrefix::ToString() const { return absl::StrCat(addr.ToString(), "/", len); }

bool IpPrefix::Contains(const IpAddress& ip) const {
  return ip.family == addr.family && SameLeadingBits(addr, ip, len);
}

bool IpPrefix::Covers(const IpPrefix& other) const {
  return other.addr.family == addr.family && other.len >= len &&
         SameLeadingBits(addr, other.addr, len);
}

bool MatchesPattern(std::string_view pattern, std::string_view value) {
  if (pattern == "*") return true;
  if (pattern.size() > 1 && pattern.back() == '*') {
    return value.starts_with(pattern.substr(0, pattern.size() - 1));
  }
  if (pattern.size() > 1 && pattern.front() == '*') return value.ends_with(pattern.substr(1));
  return pattern == value;
}

}  // namespace sockmesh::model
