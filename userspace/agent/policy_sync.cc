// SPDX-License-Identifier: Apache-2.0
#include "userspace/agent/policy_sync.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "control_plane/model/proto_conversion.h"
#include "sockmesh/consts.h"
#include "userspace/agent/abi_conversion.h"

namespace sockmesh::agent {
namespace {

absl::Status Invalid(const std::string& field, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat("policy.", field, ": ", problem));
}

// The row's source prefix as an address (family 0 when the row has none).
absl::StatusOr<model::IpAddress> RowPrefix(const v1::PolicyRow& row) {
  if (!row.has_source_prefix()) return model::IpAddress{};
  return model::FromProto(row.source_prefix());
}

absl::Status ValidateRow(const v1::PolicyRow& row, const std::string& field,
                         const std::set<uint32_t>& policy_ids) {
  if (row.port() > 65535) {
    return Invalid(absl::StrCat(field, ".port"), absl::StrCat(row.port(), " is not a port"));
  }
  absl::StatusOr<model::IpAddress> prefix = RowPrefix(row);
  if (!prefix.ok())
    return Invalid(absl::StrCat(field, ".source_prefix"), prefix.status().message());
  const uint32_t max_len = prefix->family == 0 ? 0 : (prefix->is_v4() ? 32 : 128);
  if (row.source_prefix_len() > max_len) {
    return Invalid(absl::StrCat(field, ".source_prefix_len"),
                   absl::StrCat(row.source_prefix_len(), " is longer than ",
                                prefix->family == 0 ? "the absent prefix"
                                : prefix->is_v4()   ? "an IPv4 address"
                                                    : "an IPv6 address"));
  }
  const std::pair<const char*, uint32_t> ids[] = {{"deny_policy_id", row.deny_policy_id()},
                                                  {"allow_policy_id", row.allow_policy_id()},
                                                  {"audit_policy_id", row.audit_policy_id()}};
  for (const auto& [name, id] : ids) {
    if (id != 0 && !policy_ids.contains(id)) {
      return Invalid(absl::StrCat(field, ".", name),
                     absl::StrCat(id, " is not in policy.policies"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateCompiledPolicy(const v1::CompiledPolicy& policy) {
  std::set<uint32_t> policy_ids;
  for (int i = 0; i < policy.policies_size(); ++i) {
    const uint32_t id = policy.policies(i).policy_id();
    if (id == 0 || !policy_ids.insert(id).second) {
      return Invalid(absl::StrCat("policies[", i, "].policy_id"),
                     absl::StrCat(id, id == 0 ? " (must be >= 1)" : " is used twice"));
    }
  }
  std::set<uint32_t> set_ids;
  for (int i = 0; i < policy.sets_size(); ++i) {
    const v1::PolicySet& set = policy.sets(i);
    const std::string field = absl::StrCat("sets[", i, "]");
    if (set.policy_set_id() == 0 || !set_ids.insert(set.policy_set_id()).second) {
      return Invalid(field + ".policy_set_id",
                     absl::StrCat(set.policy_set_id(),
                                  set.policy_set_id() == 0 ? " (must be >= 1)" : " is used twice"));
    }
    std::set<sm_policy_row_key, bpf::AbiLess> keys;
    for (int j = 0; j < set.rows_size(); ++j) {
      const v1::PolicyRow& row = set.rows(j);
      const std::string row_field = absl::StrCat(field, ".rows[", j, "]");
      if (absl::Status s = ValidateRow(row, row_field, policy_ids); !s.ok()) return s;
      sm_policy_row_key key = ToPolicyRowKey(0, row.source_identity(), row.port(), *RowPrefix(row),
                                             row.source_prefix_len());
      if (!keys.insert(key).second) {
        return Invalid(row_field,
                       absl::StrCat("(source_identity ", row.source_identity(), ", port ",
                                    row.port(), ", source prefix) repeats an earlier row"));
      }
    }
  }
  std::set<uint32_t> endpoint_ids;
  for (int i = 0; i < policy.endpoints_size(); ++i) {
    const v1::PolicyEndpoint& ep = policy.endpoints(i);
    const std::string field = absl::StrCat("endpoints[", i, "]");
    if (ep.endpoint_id() == 0 || !endpoint_ids.insert(ep.endpoint_id()).second) {
      return Invalid(field + ".endpoint_id",
                     absl::StrCat(ep.endpoint_id(),
                                  ep.endpoint_id() == 0 ? " (must be >= 1)" : " is used twice"));
    }
    if (!set_ids.contains(ep.policy_set_id())) {
      return Invalid(field + ".policy_set_id",
                     absl::StrCat(ep.policy_set_id(), " is not in policy.sets"));
    }
    for (int j = 0; j < ep.ips_size(); ++j) {
      if (absl::StatusOr<model::IpAddress> ip = model::FromProto(ep.ips(j)); !ip.ok()) {
        return Invalid(absl::StrCat(field, ".ips[", j, "]"), ip.status().message());
      }
    }
  }
  return absl::OkStatus();
}

std::string PolicySyncReport::Summary() const {
  return absl::StrCat("policy: ", rows_written, " rows written, ", rows_deleted, " deleted; ",
                      endpoints_written, " endpoint entries written, ", endpoints_deleted,
                      " deleted",
                      warnings.empty() ? "" : absl::StrCat(", ", warnings.size(), " warnings"));
}

absl::StatusOr<PolicySync> PolicySync::Recover(PolicyMaps maps) {
  PolicySync sync(maps);
  auto rows = maps.rows->Dump();
  if (!rows.ok()) return rows.status();
  for (const auto& [key, value] : *rows) {
    sync.rows_.insert(key);
    sync.next_set_id_ = std::max(sync.next_set_id_, key.policy_set_id + 1);
  }
  auto ips = maps.ips->Dump();
  if (!ips.ok()) return ips.status();
  for (const auto& [key, value] : *ips) {
    absl::StatusOr<model::IpAddress> ip = FromIpIdentityKey(key);
    if (!ip.ok()) {
      (void)maps.ips->Delete(key);  // nothing this agent could have written: nothing can plan it
      continue;
    }
    sync.ips_[*ip] = value;
  }
  auto cgroups = maps.cgroups->Dump();
  if (!cgroups.ok()) return cgroups.status();
  for (const auto& [id, value] : *cgroups) sync.cgroups_[id] = value;
  // The gate may come from a build without it (a fresh map says RECORD): match the endpoints.
  if (absl::Status s = sync.SetFlowGate(!sync.cgroups_.empty()); !s.ok()) return s;
  return sync;
}

uint32_t PolicySync::FreshSetId(const std::set<uint32_t>& taken) {
  while (next_set_id_ == 0 || taken.contains(next_set_id_)) ++next_set_id_;
  return next_set_id_++;
}

absl::Status PolicySync::WriteRows(const v1::CompiledPolicy& policy,
                                   std::map<uint32_t, uint32_t>& kernel_set_of,
                                   std::set<sm_policy_row_key, bpf::AbiLess>& written,
                                   PolicySyncReport& report) {
  std::set<uint32_t> taken;
  for (const sm_policy_row_key& key : rows_) taken.insert(key.policy_set_id);
  size_t new_rows = 0;
  for (const v1::PolicySet& set : policy.sets()) new_rows += set.rows_size();
  if (rows_.size() + new_rows > maps_.rows->max_entries()) {
    return absl::ResourceExhaustedError(
        absl::StrCat("policy.sets: ", new_rows, " rows do not fit in ", maps_.rows->name(),
                     " (max_entries ", maps_.rows->max_entries(), ", ", rows_.size(),
                     " rows of the policy in force stay until the new one is in place)"));
  }
  for (int i = 0; i < policy.sets_size(); ++i) {
    const v1::PolicySet& set = policy.sets(i);
    const uint32_t kernel_id = FreshSetId(taken);
    taken.insert(kernel_id);
    kernel_set_of[set.policy_set_id()] = kernel_id;
    for (int j = 0; j < set.rows_size(); ++j) {
      const v1::PolicyRow& row = set.rows(j);
      sm_policy_row_key key = ToPolicyRowKey(kernel_id, row.source_identity(), row.port(),
                                             *RowPrefix(row), row.source_prefix_len());
      absl::Status s = maps_.rows->Update(
          key, ToAbiPolicyRow(row.deny_policy_id(), row.allow_policy_id(), row.audit_policy_id()));
      if (!s.ok()) {
        for (const sm_policy_row_key& k : written) (void)maps_.rows->Delete(k);
        written.clear();
        return absl::Status(s.code(),
                            absl::StrCat("policy.sets[", i, "].rows[", j, "] (policy_set_id ",
                                         set.policy_set_id(), "): ", s.message()));
      }
      written.insert(key);
      ++report.rows_written;
    }
  }
  return absl::OkStatus();
}

PolicySync::EndpointPlan PolicySync::PlanEndpoints(
    const v1::CompiledPolicy& policy, const std::map<uint32_t, uint32_t>& kernel_set_of,
    const std::vector<WorkloadCgroup>& local_cgroups, PolicySyncReport& report) const {
  std::map<std::pair<std::string, std::string>, uint64_t> cgroup_of;
  for (const WorkloadCgroup& c : local_cgroups) {
    cgroup_of[{c.workload.namespace_name, c.workload.name}] = c.cgroup_id;
  }
  std::map<uint32_t, const v1::PolicySet*> sets;
  for (const v1::PolicySet& set : policy.sets()) sets[set.policy_set_id()] = &set;
  EndpointPlan plan;
  for (const v1::PolicyEndpoint& ep : policy.endpoints()) {
    const v1::PolicySet& set = *sets.at(ep.policy_set_id());
    bool address_dependent = set.source_address_dependent();
    // A compiler that forgot the flag must not make connect() decide without the address.
    for (const v1::PolicyRow& row : set.rows()) address_dependent |= row.has_source_prefix();
    const sm_policy_endpoint value = ToAbiPolicyEndpoint(
        ep.endpoint_id(), kernel_set_of.at(ep.policy_set_id()), set.has_allow(), address_dependent);
    for (const v1::IpAddress& proto_ip : ep.ips()) {
      model::IpAddress ip = *model::FromProto(proto_ip);
      if (!plan.ips.emplace(ip, value).second) {
        report.warnings.push_back(
            absl::StrCat("address ", ip.ToString(), " of endpoint ", ep.endpoint_id(),
                         " is claimed by an earlier endpoint; the first wins"));
      }
    }
    auto cgroup = cgroup_of.find({ep.workload().namespace_(), ep.workload().name()});
    if (cgroup != cgroup_of.end()) plan.cgroups[cgroup->second] = value;
  }
  return plan;
}

namespace {

// Writes `want` over `have` in two steps: first every new or changed entry (on failure the entries
// already switched get their old value back), then the deletions.
template <typename Key, typename AbiKey, typename ToAbi>
absl::Status SwitchMap(bpf::MapInterface<AbiKey, sm_policy_endpoint>& map,
                       const std::map<Key, sm_policy_endpoint>& want,
                       std::map<Key, sm_policy_endpoint>& have, ToAbi to_abi,
                       PolicySyncReport& report) {
  std::vector<std::pair<Key, std::optional<sm_policy_endpoint>>> switched;
  for (const auto& [key, value] : want) {
    auto it = have.find(key);
    if (it != have.end() && bpf::AbiEqual(it->second, value)) continue;
    if (absl::Status s = map.Update(to_abi(key), value); !s.ok()) {
      for (const auto& [k, old] : switched) {
        if (old) {
          (void)map.Update(to_abi(k), *old);
        } else {
          (void)map.Delete(to_abi(k));
        }
      }
      return absl::Status(s.code(), absl::StrCat("endpoint ", value.endpoint_id, " in ", map.name(),
                                                 ": ", s.message()));
    }
    switched.emplace_back(
        key, it == have.end() ? std::nullopt : std::optional<sm_policy_endpoint>(it->second));
  }
  report.endpoints_written += switched.size();
  for (const auto& [key, value] : want) have[key] = value;
  for (auto it = have.begin(); it != have.end();) {
    if (want.contains(it->first)) {
      ++it;
      continue;
    }
    absl::Status s = map.Delete(to_abi(it->first));
    if (!s.ok() && !absl::IsNotFound(s)) {
      report.warnings.push_back(absl::StrCat(map.name(), " delete: ", s.message()));
      ++it;
      continue;
    }
    ++report.endpoints_deleted;
    it = have.erase(it);
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status PolicySync::SetFlowGate(bool record) {
  if (maps_.flow_gate == nullptr) return absl::OkStatus();
  return maps_.flow_gate->Update(0, record ? SM_FLOW_GATE_RECORD : SM_FLOW_GATE_SKIP);
}

absl::Status PolicySync::SwitchEndpoints(const EndpointPlan& plan, PolicySyncReport& report) {
  // Clients' egress records flows before a destination-side check can look for them.
  if (!plan.cgroups.empty()) {
    if (absl::Status s = SetFlowGate(true); !s.ok()) return s;
  }
  auto ips_before = ips_;
  if (absl::Status s = SwitchMap(*maps_.ips, plan.ips, ips_, ToIpIdentityKey, report); !s.ok()) {
    return s;
  }
  absl::Status s = SwitchMap(
      *maps_.cgroups, plan.cgroups, cgroups_, [](uint64_t id) { return id; }, report);
  if (!s.ok()) {
    // Both maps run one policy: put the addresses back as they were.
    PolicySyncReport ignored;
    (void)SwitchMap(*maps_.ips, ips_before, ips_, ToIpIdentityKey, ignored);
    return s;
  }
  if (cgroups_.empty()) {
    if (absl::Status g = SetFlowGate(false); !g.ok()) {
      report.warnings.push_back(absl::StrCat("flow gate: ", g.message()));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<PolicySyncReport> PolicySync::Apply(
    const v1::CompiledPolicy& policy, const std::vector<WorkloadCgroup>& local_cgroups) {
  if (absl::Status s = ValidateCompiledPolicy(policy); !s.ok()) return s;
  PolicySyncReport report;
  std::map<uint32_t, uint32_t> kernel_set_of;
  std::set<sm_policy_row_key, bpf::AbiLess> written;
  if (absl::Status s = WriteRows(policy, kernel_set_of, written, report); !s.ok()) return s;
  EndpointPlan plan = PlanEndpoints(policy, kernel_set_of, local_cgroups, report);
  if (absl::Status s = SwitchEndpoints(plan, report); !s.ok()) {
    for (const sm_policy_row_key& k : written) (void)maps_.rows->Delete(k);
    return s;
  }
  // No endpoint points at the old sets any more: their rows can go.
  for (auto it = rows_.begin(); it != rows_.end();) {
    absl::Status s = maps_.rows->Delete(*it);
    if (!s.ok() && !absl::IsNotFound(s)) {
      report.warnings.push_back(absl::StrCat(maps_.rows->name(), " delete of set ",
                                             it->policy_set_id, ": ", s.message()));
      ++it;
      continue;
    }
    ++report.rows_deleted;
    it = rows_.erase(it);
  }
  rows_.insert(written.begin(), written.end());
  kernel_set_of_ = std::move(kernel_set_of);
  policy_ = policy;
  have_policy_ = true;
  return report;
}

absl::StatusOr<PolicySyncReport> PolicySync::UpdateCgroups(
    const std::vector<WorkloadCgroup>& local_cgroups) {
  PolicySyncReport report;
  // Before the first policy the maps keep what a previous agent wrote: an empty plan would wipe it.
  if (!have_policy_) return report;
  EndpointPlan plan = PlanEndpoints(policy_, kernel_set_of_, local_cgroups, report);
  if (absl::Status s = SwitchEndpoints(plan, report); !s.ok()) return s;
  return report;
}

}  // namespace sockmesh::agent
