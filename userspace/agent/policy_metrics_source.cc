// SPDX-License-Identifier: Apache-2.0
#include "userspace/agent/policy_metrics_source.h"

#include <bpf/bpf.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "sockmesh/consts.h"
#include "userspace/log/log.h"

namespace sockmesh::agent {
namespace {

std::string Lookup(const std::map<uint32_t, std::string>& names, uint32_t id) {
  auto it = names.find(id);
  return it == names.end() ? "unknown" : it->second;
}

// Whether `id` named something in `before` that `after` names differently or not at all.
bool Renamed(const std::map<uint32_t, std::string>& before,
             const std::map<uint32_t, std::string>& after, uint32_t id) {
  auto was = before.find(id);
  if (was == before.end()) return false;
  auto is = after.find(id);
  return is == after.end() || is->second != was->second;
}

}  // namespace

std::string PolicyNames::Endpoint(uint32_t id) const { return Lookup(endpoints, id); }
std::string PolicyNames::Policy(uint32_t id) const { return Lookup(policies, id); }
std::string PolicyNames::Identity(uint32_t id) const { return Lookup(identities, id); }

PolicyNames NamePolicy(const v1::CompiledPolicy& policy, const model::WorkloadState& workloads) {
  PolicyNames names;
  for (const v1::PolicyEndpoint& ep : policy.endpoints()) {
    names.endpoints[ep.endpoint_id()] =
        absl::StrCat(ep.workload().namespace_(), "/", ep.workload().name());
  }
  for (const v1::PolicyRef& p : policy.policies()) {
    names.policies[p.policy_id()] = absl::StrCat(p.namespace_(), "/", p.name());
  }
  for (const auto& [principal, id] : workloads.identities) names.identities[id] = principal;
  // An identity with exactly one workload is named after the workload, as Istio's
  // source_workload is; several workloads of one service account keep the principal.
  std::map<uint32_t, int> workloads_of;
  for (const auto& [key, w] : workloads.workloads) ++workloads_of[w.identity];
  for (const auto& [key, w] : workloads.workloads) {
    if (workloads_of[w.identity] == 1) names.identities[w.identity] = key.ToString();
  }
  return names;
}

std::vector<metrics::LabelledPolicyDecision> LabelPolicyDecisions(
    const std::vector<bpf::PolicyDecisionCount>& decisions, const PolicyNames& names) {
  std::vector<metrics::LabelledPolicyDecision> out;
  out.reserve(decisions.size());
  for (const bpf::PolicyDecisionCount& d : decisions) {
    metrics::PolicyDecisionLabels l;
    l.source_workload = names.Identity(d.key.source_identity);
    l.destination_workload = names.Endpoint(d.key.endpoint_id);
    l.reporter = d.key.point == SM_POLICY_AT_CLIENT ? "source" : "destination";
    switch (d.key.verdict) {
      case SM_POLICY_ALLOW:
        l.action = "allow";
        l.policy = d.key.policy_id ? names.Policy(d.key.policy_id) : "no_allow_policy";
        break;
      case SM_POLICY_DENY:
        l.action = "deny";
        l.policy = names.Policy(d.key.policy_id);
        break;
      case SM_POLICY_DENY_NO_MATCH:
        l.action = "deny";
        l.policy = "no_allow_match";
        break;
      case SM_POLICY_AUDIT:
        l.action = "audit";
        l.policy = names.Policy(d.key.policy_id);
        break;
      default:
        continue;
    }
    out.push_back({.labels = std::move(l), .count = d.count});
  }
  return out;
}

std::vector<sm_policy_decision_key> StaleDecisionKeys(
    const std::vector<bpf::PolicyDecisionCount>& decisions, const PolicyNames& before,
    const PolicyNames& after) {
  std::vector<sm_policy_decision_key> out;
  for (const bpf::PolicyDecisionCount& d : decisions) {
    // Policy 0 is "no policy decided" (no_allow_policy / no_allow_match), never renumbered.
    if (Renamed(before.endpoints, after.endpoints, d.key.endpoint_id) ||
        (d.key.policy_id != 0 && Renamed(before.policies, after.policies, d.key.policy_id))) {
      out.push_back(d.key);
    }
  }
  return out;
}

void PolicyDecisionLabeler::SetNames(PolicyNames names) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<std::vector<bpf::PolicyDecisionCount>> decisions = bpf::ReadPolicyDecisions(fd_);
  if (!decisions.ok()) {
    log::Warn("policy", "stale decision counters not removed: ", decisions.status().message());
  } else {
    for (const sm_policy_decision_key& key : StaleDecisionKeys(*decisions, names_, names)) {
      // ENOENT: gone already (only this agent deletes, but a restarted one may race an old one).
      if (bpf_map_delete_elem(fd_, &key) != 0 && errno != ENOENT) {
        log::Warn("policy", "delete a stale decision counter: ", std::strerror(errno));
      }
    }
  }
  names_ = std::move(names);
}

absl::StatusOr<std::vector<metrics::LabelledPolicyDecision>> PolicyDecisionLabeler::Read() const {
  absl::StatusOr<std::vector<bpf::PolicyDecisionCount>> decisions = bpf::ReadPolicyDecisions(fd_);
  if (!decisions.ok()) return decisions.status();
  absl::MutexLock lock(&mu_);
  return LabelPolicyDecisions(*decisions, names_);
}

}  // namespace sockmesh::agent
