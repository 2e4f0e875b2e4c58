// SPDX-License-Identifier: Apache-2.0
#include "control_plane/sources/workload_builder.h"

#include <set>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "control_plane/model/identity_allocator.h"
#include "control_plane/sources/authorization_policy_builder.h"
#include "control_plane/sources/desired_state_builder.h"
#include "control_plane/sources/traffic_policy_compiler.h"

namespace sockmesh::sources {
namespace {

using model::Workload;
using model::WorkloadKey;
using model::WorkloadKind;

std::string Describe(WorkloadKind kind, const WorkloadKey& key, const std::string& source) {
  return absl::StrCat(std::string(model::WorkloadKindName(kind)), " ", key.ToString(), " (", source,
                      ")");
}

// Pods and WorkloadEntries share one name space per namespace: a standalone workload's cgroup is
// <namespace>/<name>, so two workloads of one name would claim the same processes.
absl::Status AddWorkload(Workload w, const std::string& source, model::WorkloadState& out,
                         std::map<WorkloadKey, std::string>& sources) {
  const WorkloadKey key = w.key();
  auto [it, inserted] = sources.emplace(key, Describe(w.kind, key, source));
  if (!inserted) {
    return absl::InvalidArgumentError(absl::StrCat("workload ", key.ToString(),
                                                   " is defined twice: ", it->second, " and ",
                                                   Describe(w.kind, key, source)));
  }
  out.workloads.emplace(key, std::move(w));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<model::WorkloadState> BuildWorkloads(
    const ParsedManifests& objects, const std::map<std::string, uint32_t>& previous_identities) {
  model::WorkloadState out;
  std::map<WorkloadKey, std::string> sources;
  for (const PodManifest& pod : objects.pods) {
    Workload w{.kind = WorkloadKind::kPod,
               .namespace_name = pod.namespace_name,
               .name = pod.name,
               .service_account = pod.service_account,
               .labels = pod.labels,
               .ips = pod.ips,
               .node_name = pod.node_name};
    if (absl::Status s = AddWorkload(std::move(w), pod.source, out, sources); !s.ok()) return s;
  }
  for (const WorkloadEntryManifest& entry : objects.workload_entries) {
    Workload w{.kind = WorkloadKind::kWorkloadEntry,
               .namespace_name = entry.namespace_name,
               .name = entry.name,
               .service_account = entry.service_account,
               .labels = entry.labels,
               .ips = entry.ips};
    if (absl::Status s = AddWorkload(std::move(w), entry.source, out, sources); !s.ok()) return s;
  }
  std::map<std::string, const NamespaceManifest*> namespaces;
  for (const NamespaceManifest& ns : objects.namespaces) {
    auto [it, inserted] = namespaces.emplace(ns.name, &ns);
    if (!inserted) {
      return absl::InvalidArgumentError(absl::StrCat("Namespace ", ns.name,
                                                     " is defined twice: in ", it->second->source,
                                                     " and in ", ns.source));
    }
    out.namespaces[ns.name] = ns.labels;
  }

  std::set<std::string> principals;
  for (const auto& [key, w] : out.workloads) principals.insert(w.principal());
  out.identities = model::AllocateIdentities(principals, previous_identities);
  for (auto& [key, w] : out.workloads) w.identity = out.identities.at(w.principal());
  return out;
}

absl::StatusOr<model::DesiredState> BuildDesiredState(const ParsedManifests& objects,
                                                      const model::DesiredState& previous) {
  absl::StatusOr<model::DesiredState> state = BuildDesiredState(objects.services, objects.slices);
  if (!state.ok()) return state.status();
  absl::StatusOr<model::WorkloadState> workloads =
      BuildWorkloads(objects, previous.workloads.identities);
  if (!workloads.ok()) return workloads.status();
  state->workloads = *std::move(workloads);
  if (absl::Status s = BuildAuthorizationPolicies(objects.authorization_policies, previous, *state);
      !s.ok()) {
    return s;
  }
  // Policies last: a subset split needs the workloads' labels.
  absl::StatusOr<std::vector<TrafficPolicyStatus>> policies =
      ApplyTrafficPolicies(objects.traffic_policies, *state);
  if (!policies.ok()) return policies.status();
  return state;
}

void AppendManifests(const ParsedManifests& from, ParsedManifests& into) {
  auto append = [](const auto& src, auto& dst) { dst.insert(dst.end(), src.begin(), src.end()); };
  append(from.services, into.services);
  append(from.slices, into.slices);
  append(from.pods, into.pods);
  append(from.workload_entries, into.workload_entries);
  append(from.namespaces, into.namespaces);
  append(from.authorization_policies, into.authorization_policies);
  append(from.traffic_policies, into.traffic_policies);
  append(from.notes, into.notes);
}

}  // namespace sockmesh::sources
