// SPDX-License-Identifier: Apache-2.0
// A reference of the kernel's policy decision in plain C++: given a CompiledPolicy, the
// destination endpoint's address, the source's identity and address and the destination port, the
// verdict and the policy that made it, looked up exactly as the datapath does (endpoint by address,
// then four longest-prefix lookups: identity in {S, any} x port in {P, any}). Tests check the
// compiler against Istio's evaluation order through it; it is not on any data path.
#ifndef SOCKMESH_CONTROL_PLANE_MODEL_POLICY_EVALUATOR_H_
#define SOCKMESH_CONTROL_PLANE_MODEL_POLICY_EVALUATOR_H_

#include <cstdint>
#include <string_view>

#include "control_plane/model/authorization_policy.h"

namespace sockmesh::model {

enum class PolicyVerdictReason : uint8_t {
  kNotSelected,    // the destination is not an endpoint: no policy selects it, allowed
  kDenyMatch,      // a DENY policy matched
  kNoAllowPolicy,  // selected, but by no ALLOW policy, and no DENY matched: allowed
  kAllowMatch,     // an ALLOW policy matched
  kNoAllowMatch,   // ALLOW policies select it and none matched: denied
};
std::string_view PolicyVerdictReasonName(PolicyVerdictReason reason);

struct PolicyVerdict {
  bool allowed = true;
  PolicyVerdictReason reason = PolicyVerdictReason::kNotSelected;
  uint32_t policy_id = 0;        // the DENY or ALLOW policy that decided; 0 when none did
  uint32_t audit_policy_id = 0;  // an AUDIT policy that matched (only counted)
  uint32_t endpoint_id = 0;      // 0 when the destination is not an endpoint
};

// Where several lookups match, the lowest policy id of an action is reported, as within a row.
// IPv4-mapped IPv6 addresses are treated as the IPv4 address they carry, as the kernel keys them.
PolicyVerdict EvaluatePolicy(const CompiledPolicy& policy, const IpAddress& endpoint_ip,
                             uint32_t source_identity, const IpAddress& source_address,
                             uint16_t port);

}  // namespace sockmesh::model

#endif  // SOCKMESH_CONTROL_PLANE_MODEL_POLICY_EVALUATOR_H_
