// SPDX-License-Identifier: Apache-2.0
#include "userspace/agent/identity_sync.h"

#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "userspace/agent/abi_conversion.h"

namespace sockmesh::agent {
namespace {

// Writes `want` over `have` (the kernel's content as last known): deletes what is gone, writes
// what is new or different, and keeps `have` equal to what the kernel holds after each call.
template <typename ModelKey, typename AbiKey, typename ToAbi, typename Describe>
void Reconcile(bpf::MapInterface<AbiKey, sm_identity>& map,
               const std::map<ModelKey, sm_identity>& want, std::map<ModelKey, sm_identity>& have,
               ToAbi to_abi, Describe describe, IdentitySyncReport& report) {
  for (auto it = have.begin(); it != have.end();) {
    if (want.contains(it->first)) {
      ++it;
      continue;
    }
    absl::Status s = map.Delete(to_abi(it->first));
    if (!s.ok() && !absl::IsNotFound(s)) {
      report.errors.push_back(
          absl::StrCat(map.name(), " delete ", describe(it->first), ": ", s.message()));
      ++it;
      continue;
    }
    ++report.deleted;
    it = have.erase(it);
  }
  for (const auto& [key, value] : want) {
    auto it = have.find(key);
    if (it != have.end() && bpf::AbiEqual(it->second, value)) continue;
    if (absl::Status s = map.Update(to_abi(key), value); !s.ok()) {
      report.errors.push_back(
          absl::StrCat(map.name(), " update ", describe(key), ": ", s.message()));
      continue;
    }
    ++report.written;
    have[key] = value;
  }
}

}  // namespace

IdentityPlan PlanIdentities(const model::WorkloadState& workloads, std::string_view node_name,
                            const std::vector<WorkloadCgroup>& local_cgroups) {
  IdentityPlan plan;
  std::map<model::WorkloadKey, uint64_t> cgroup_of;
  for (const WorkloadCgroup& c : local_cgroups) {
    cgroup_of[{c.workload.namespace_name, c.workload.name}] = c.cgroup_id;
  }
  std::map<model::IpAddress, const model::Workload*> owner;
  for (const auto& [key, w] : workloads.workloads) {
    auto cgroup = cgroup_of.find(key);
    const bool local =
        (!node_name.empty() && w.node_name == node_name) || cgroup != cgroup_of.end();
    const sm_identity value = ToAbiIdentity(w.identity, local);
    if (cgroup != cgroup_of.end()) plan.cgroups[cgroup->second] = value;
    for (const model::IpAddress& ip : w.ips) {
      auto [it, inserted] = owner.emplace(ip, &w);
      if (inserted) {
        plan.ips[ip] = value;
      } else if (it->second->identity != w.identity) {
        plan.conflicts.push_back(absl::StrCat("address ", ip.ToString(), " is claimed by ",
                                              it->second->namespace_name, "/", it->second->name,
                                              " and ", key.ToString(), "; the first one wins"));
      }
    }
  }
  return plan;
}

std::string IdentitySyncReport::Summary() const {
  return absl::StrCat("identities: ", written, " entries written, ", deleted, " deleted",
                      errors.empty() ? "" : absl::StrCat(", ", errors.size(), " failed"));
}

absl::StatusOr<IdentitySync> IdentitySync::Recover(IdentityMaps maps) {
  IdentitySync sync(maps);
  absl::StatusOr<std::vector<std::pair<sm_ip_identity_key, sm_identity>>> ips = maps.ips->Dump();
  if (!ips.ok()) return ips.status();
  for (const auto& [key, value] : *ips) {
    absl::StatusOr<model::IpAddress> ip = FromIpIdentityKey(key);
    if (!ip.ok()) {
      // Not an address this agent could have written: remove it now, nothing can plan it.
      (void)maps.ips->Delete(key);
      continue;
    }
    sync.ips_[*ip] = value;
  }
  absl::StatusOr<std::vector<std::pair<uint64_t, sm_identity>>> cgroups = maps.cgroups->Dump();
  if (!cgroups.ok()) return cgroups.status();
  for (const auto& [id, value] : *cgroups) sync.cgroups_[id] = value;
  return sync;
}

IdentitySyncReport IdentitySync::Apply(const IdentityPlan& plan) {
  IdentitySyncReport report;
  Reconcile(
      *maps_.ips, plan.ips, ips_, ToIpIdentityKey,
      [](const model::IpAddress& ip) { return ip.ToString(); }, report);
  Reconcile(
      *maps_.cgroups, plan.cgroups, cgroups_, [](uint64_t id) { return id; },
      [](uint64_t id) { return absl::StrCat("cgroup ", id); }, report);
  return report;
}

}  // namespace sockmesh::agent
