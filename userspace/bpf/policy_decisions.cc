// SPDX-License-Identifier: Apache-2.0
#include "userspace/bpf/policy_decisions.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>

#include "userspace/sys/errno_status.h"

namespace sockmesh::bpf {

absl::StatusOr<std::vector<PolicyDecisionCount>> ReadPolicyDecisions(int fd) {
  int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0) return sys::ErrnoToStatus(cpus, "count possible CPUs");
  std::vector<uint64_t> per_cpu(static_cast<size_t>(cpus));
  std::vector<PolicyDecisionCount> out;
  sm_policy_decision_key key{};
  sm_policy_decision_key next{};
  const sm_policy_decision_key* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    if (bpf_map_lookup_elem(fd, &next, per_cpu.data()) == 0) {
      PolicyDecisionCount d{.key = next};
      for (uint64_t c : per_cpu) d.count += c;
      out.push_back(d);
    }
    key = next;
    prev = &key;
  }
  if (errno != ENOENT) return sys::ErrnoToStatus(errno, "iterate sm_policy_decisions_v1");
  return out;
}

uint64_t DecisionCount(const std::vector<PolicyDecisionCount>& decisions,
                       const sm_policy_decision_key& key) {
  for (const PolicyDecisionCount& d : decisions) {
    if (AbiEqual(d.key, key)) return d.count;
  }
  return 0;
}

const char* PolicyVerdictName(uint8_t verdict) {
  switch (verdict) {
    case SM_POLICY_ALLOW:
      return "allow";
    case SM_POLICY_DENY:
      return "deny";
    case SM_POLICY_DENY_NO_MATCH:
      return "deny_no_match";
    case SM_POLICY_AUDIT:
      return "audit";
  }
  return "unknown";
}

const char* PolicyPointName(uint8_t point) {
  switch (point) {
    case SM_POLICY_AT_CLIENT:
      return "client";
    case SM_POLICY_AT_DESTINATION:
      return "destination";
  }
  return "unknown";
}

}  // namespace sockmesh::bpf
