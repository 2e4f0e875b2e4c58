// SPDX-License-Identifier: Apache-2.0
#include "control_plane/model/policy_evaluator.h"

#include <algorithm>

namespace sockmesh::model {
namespace {

IpAddress Unmapped(const IpAddress& ip) {
  static constexpr uint8_t kMappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
  if (!ip.is_v6() || !std::equal(kMappedPrefix, kMappedPrefix + 12, ip.bytes.begin())) return ip;
  IpAddress v4;
  v4.family = 4;
  std::copy(ip.bytes.begin() + 12, ip.bytes.end(), v4.bytes.begin());
  return v4;
}

// The kernel's LPM: among the rows of (identity, port), the one whose prefix is the longest that
// contains `source`; a row without prefix matches every address and is the shortest.
const PolicyRow* LongestMatch(const PolicySet& set, uint32_t identity, uint16_t port,
                              const IpAddress& source) {
  const PolicyRow* best = nullptr;
  int best_len = -2;
  for (const PolicyRow& row : set.rows) {
    if (row.source_identity != identity || row.port != port) continue;
    int len = -1;
    if (row.source_prefix.has_value()) {
      if (!row.source_prefix->Contains(source)) continue;
      len = row.source_prefix->len;
    }
    if (len > best_len) {
      best = &row;
      best_len = len;
    }
  }
  return best;
}

void Lowest(uint32_t& into, uint32_t id) {
  if (id != 0 && (into == 0 || id < into)) into = id;
}

}  // namespace

std::string_view PolicyVerdictReasonName(PolicyVerdictReason reason) {
  switch (reason) {
    case PolicyVerdictReason::kNotSelected:
      return "not-selected";
    case PolicyVerdictReason::kDenyMatch:
      return "deny-match";
    case PolicyVerdictReason::kNoAllowPolicy:
      return "no-allow-policy";
    case PolicyVerdictReason::kAllowMatch:
      return "allow-match";
    case PolicyVerdictReason::kNoAllowMatch:
      return "no-allow-match";
  }
  return "?";
}

PolicyVerdict EvaluatePolicy(const CompiledPolicy& policy, const IpAddress& endpoint_ip,
                             uint32_t source_identity, const IpAddress& source_address,
                             uint16_t port) {
  PolicyVerdict verdict;
  const IpAddress destination = Unmapped(endpoint_ip);
  const PolicyEndpoint* endpoint = nullptr;
  for (const PolicyEndpoint& e : policy.endpoints) {
    if (std::find(e.ips.begin(), e.ips.end(), destination) != e.ips.end()) endpoint = &e;
  }
  if (endpoint == nullptr) return verdict;
  verdict.endpoint_id = endpoint->endpoint_id;
  auto set = std::find_if(policy.sets.begin(), policy.sets.end(), [&](const PolicySet& s) {
    return s.policy_set_id == endpoint->policy_set_id;
  });
  if (set == policy.sets.end()) return verdict;  // the kernel fails open on a dangling set id

  const IpAddress source = Unmapped(source_address);
  uint32_t deny = 0, allow = 0;
  for (uint32_t identity : {source_identity, kAnySourceIdentity}) {
    for (uint16_t p : {port, kAnyPort}) {
      const PolicyRow* row = LongestMatch(*set, identity, p, source);
      if (row == nullptr) continue;
      Lowest(deny, row->deny_policy_id);
      Lowest(allow, row->allow_policy_id);
      Lowest(verdict.audit_policy_id, row->audit_policy_id);
    }
  }
  if (deny != 0) {
    verdict.allowed = false;
    verdict.reason = PolicyVerdictReason::kDenyMatch;
    verdict.policy_id = deny;
  } else if (!set->has_allow) {
    verdict.reason = PolicyVerdictReason::kNoAllowPolicy;
  } else if (allow != 0) {
    verdict.reason = PolicyVerdictReason::kAllowMatch;
    verdict.policy_id = allow;
  } else {
    verdict.allowed = false;
    verdict.reason = PolicyVerdictReason::kNoAllowMatch;
  }
  return verdict;
}

}  // namespace sockmesh::model
