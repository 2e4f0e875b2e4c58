// SPDX-License-Identifier: Apache-2.0
#include "userspace/ctl/identity_dump.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"
#include "userspace/agent/abi_conversion.h"
#include "userspace/ctl/text_table.h"

namespace sockmesh::ctl {
namespace {

std::string IdentityName(uint32_t identity) {
  if (identity == model::kIdentityUnknown) return "(unknown)";
  if (identity == model::kIdentityHost) return "(host)";
  return "";
}

}  // namespace

IdentityDump BuildIdentityDump(std::string instance,
                               const std::vector<std::pair<sm_ip_identity_key, sm_identity>>& ips,
                               const std::vector<std::pair<uint64_t, sm_identity>>& cgroups,
                               const absl::StatusOr<model::WorkloadState>& names,
                               const std::map<uint64_t, std::string>& cgroup_workloads) {
  IdentityDump dump;
  dump.instance = std::move(instance);
  std::map<model::IpAddress, std::vector<std::string>> by_ip;
  if (names.ok()) {
    for (const auto& [principal, identity] : names->identities) {
      dump.identities[identity] = principal;
    }
    for (const auto& [key, w] : names->workloads) {
      for (const model::IpAddress& ip : w.ips) by_ip[ip].push_back(key.ToString());
    }
  } else {
    dump.names_unavailable = std::string(names.status().message());
  }
  auto principal_of = [&dump](uint32_t identity) {
    auto it = dump.identities.find(identity);
    return it == dump.identities.end() ? IdentityName(identity) : it->second;
  };

  std::vector<std::pair<model::IpAddress, sm_identity>> sorted_ips;
  for (const auto& [key, value] : ips) {
    absl::StatusOr<model::IpAddress> ip = agent::FromIpIdentityKey(key);
    if (ip.ok()) sorted_ips.emplace_back(*ip, value);
  }
  std::sort(sorted_ips.begin(), sorted_ips.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  for (const auto& [ip, value] : sorted_ips) {
    auto workloads = by_ip.find(ip);
    dump.entries.push_back(IdentityEntryView{
        .map = "ip",
        .key = ip.ToString(),
        .identity = value.identity,
        .local = (value.flags & SM_IDENTITY_F_LOCAL) != 0,
        .principal = principal_of(value.identity),
        .workloads = workloads == by_ip.end() ? std::vector<std::string>() : workloads->second});
  }
  std::vector<std::pair<uint64_t, sm_identity>> sorted_cgroups = cgroups;
  std::sort(sorted_cgroups.begin(), sorted_cgroups.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  for (const auto& [id, value] : sorted_cgroups) {
    auto workload = cgroup_workloads.find(id);
    dump.entries.push_back(IdentityEntryView{.map = "cgroup",
                                             .key = absl::StrCat(id),
                                             .identity = value.identity,
                                             .local = (value.flags & SM_IDENTITY_F_LOCAL) != 0,
                                             .principal = principal_of(value.identity),
                                             .workloads = workload == cgroup_workloads.end()
                                                              ? std::vector<std::string>()
                                                              : std::vector{workload->second}});
  }
  return dump;
}

absl::StatusOr<IdentityDump> ReadIdentityDump(
    std::string instance, const bpf::MapInterface<sm_ip_identity_key, sm_identity>& ips,
    const bpf::MapInterface<uint64_t, sm_identity>& cgroups,
    const absl::StatusOr<model::WorkloadState>& names,
    const std::map<uint64_t, std::string>& cgroup_workloads) {
  auto ip_entries = ips.Dump();
  if (!ip_entries.ok()) return ip_entries.status();
  auto cgroup_entries = cgroups.Dump();
  if (!cgroup_entries.ok()) return cgroup_entries.status();
  return BuildIdentityDump(std::move(instance), *ip_entries, *cgroup_entries, names,
                           cgroup_workloads);
}

std::string FormatIdentitiesTable(const IdentityDump& dump) {
  TextTable table({"IDENTITY", "PRINCIPAL", "MAP", "KEY", "LOCAL", "WORKLOADS"});
  for (const IdentityEntryView& e : dump.entries) {
    table.AddRow({absl::StrCat(e.identity), e.principal.empty() ? "?" : e.principal, e.map, e.key,
                  e.local ? "yes" : "no",
                  e.workloads.empty() ? "-" : absl::StrJoin(e.workloads, ",")});
  }
  if (dump.entries.empty()) table.AddNote("(no identity entries in the kernel maps)");
  if (dump.names_unavailable.has_value()) {
    table.AddNote(absl::StrCat("principals unknown (", *dump.names_unavailable, ")"));
  }
  return table.Render();
}

std::string FormatIdentitiesJson(const IdentityDump& dump) {
  nlohmann::ordered_json identities = nlohmann::ordered_json::array();
  for (const auto& [identity, principal] : dump.identities) {
    identities.push_back({{"identity", identity}, {"principal", principal}});
  }
  nlohmann::ordered_json entries = nlohmann::ordered_json::array();
  for (const IdentityEntryView& e : dump.entries) {
    entries.push_back({{"map", e.map},
                       {"key", e.key},
                       {"identity", e.identity},
                       {"local", e.local},
                       {"principal", e.principal},
                       {"workloads", e.workloads}});
  }
  nlohmann::ordered_json out = {{"instance", dump.instance},
                                {"identities", std::move(identities)},
                                {"entries", std::move(entries)}};
  if (dump.names_unavailable.has_value()) out["names_unavailable"] = *dump.names_unavailable;
  return out.dump(2) + "\n";
}

}  // namespace sockmesh::ctl
