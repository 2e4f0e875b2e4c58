// SPDX-License-Identifier: Apache-2.0
// sm_policy_decisions_v1 as userspace reads it: each (endpoint, source identity, policy, verdict,
// side) count summed over the possible CPUs.
#ifndef SOCKMESH_USERSPACE_BPF_POLICY_DECISIONS_H_
#define SOCKMESH_USERSPACE_BPF_POLICY_DECISIONS_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "userspace/bpf/abi.h"

namespace sockmesh::bpf {

struct PolicyDecisionCount {
  sm_policy_decision_key key{};
  uint64_t count = 0;
};

absl::StatusOr<std::vector<PolicyDecisionCount>> ReadPolicyDecisions(int fd);

// The count of one key in `decisions` (0 when absent).
uint64_t DecisionCount(const std::vector<PolicyDecisionCount>& decisions,
                       const sm_policy_decision_key& key);

// "allow", "deny", "deny_no_match", "audit" (SM_POLICY_*); "unknown" otherwise.
const char* PolicyVerdictName(uint8_t verdict);
// "client", "destination" (SM_POLICY_AT_*); "unknown" otherwise.
const char* PolicyPointName(uint8_t point);

}  // namespace sockmesh::bpf

#endif  // SOCKMESH_USERSPACE_BPF_POLICY_DECISIONS_H_
