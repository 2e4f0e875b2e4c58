// SPDX-License-Identifier: Apache-2.0
#include "control_plane/model/workload_conversion.h"

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "control_plane/model/proto_conversion.h"

namespace sockmesh::model {
namespace {

absl::Status Invalid(absl::string_view where, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(where, ": ", what));
}

v1::Namespace NamespaceToProto(const std::string& name, const Labels& labels) {
  v1::Namespace out;
  out.set_name(name);
  out.mutable_labels()->insert(labels.begin(), labels.end());
  return out;
}

Labels LabelsFromProto(const google::protobuf::Map<std::string, std::string>& labels) {
  return Labels(labels.begin(), labels.end());
}

absl::Status CheckIdentityNumber(absl::string_view where, uint32_t identity) {
  if (identity < kFirstAllocatedIdentity || identity >= kIdentitySpace) {
    return Invalid(where, absl::StrCat("identity ", identity, " is not in ",
                                       kFirstAllocatedIdentity, "..", kIdentitySpace - 1));
  }
  return absl::OkStatus();
}

absl::Status AddIdentity(const v1::Identity& row, std::map<std::string, uint32_t>& out) {
  const std::string where = absl::StrCat("identity ", row.principal());
  if (row.principal().empty()) return Invalid("identity", "empty principal");
  if (absl::Status s = CheckIdentityNumber(where, row.identity()); !s.ok()) return s;
  out[row.principal()] = row.identity();
  return absl::OkStatus();
}

}  // namespace

v1::Workload ToProto(const Workload& w) {
  v1::Workload out;
  out.set_principal(w.principal());
  out.set_identity(w.identity);
  for (const IpAddress& ip : w.ips) *out.add_ips() = ToProto(ip);
  out.set_namespace_(w.namespace_name);
  out.set_name(w.name);
  out.set_kind(w.kind == WorkloadKind::kPod ? v1::WORKLOAD_KIND_POD
                                            : v1::WORKLOAD_KIND_WORKLOAD_ENTRY);
  out.set_service_account(w.service_account);
  out.mutable_labels()->insert(w.labels.begin(), w.labels.end());
  out.set_node_name(w.node_name);
  return out;
}

absl::StatusOr<Workload> FromProto(const v1::Workload& in) {
  if (in.namespace_().empty() || in.name().empty()) {
    return Invalid("workload", absl::StrCat("namespace \"", in.namespace_(), "\" and name \"",
                                            in.name(), "\" must both be set"));
  }
  const std::string where = absl::StrCat("workload ", in.namespace_(), "/", in.name());
  Workload w;
  w.namespace_name = in.namespace_();
  w.name = in.name();
  switch (in.kind()) {
    case v1::WORKLOAD_KIND_POD:
      w.kind = WorkloadKind::kPod;
      break;
    case v1::WORKLOAD_KIND_WORKLOAD_ENTRY:
      w.kind = WorkloadKind::kWorkloadEntry;
      break;
    default:
      return Invalid(where, absl::StrCat("unknown kind ", in.kind()));
  }
  if (in.service_account().empty()) return Invalid(where, "service_account must be set");
  w.service_account = in.service_account();
  if (in.principal() != w.principal()) {
    return Invalid(
        where, absl::StrCat("principal \"", in.principal(), "\" is not \"", w.principal(), "\""));
  }
  if (absl::Status s = CheckIdentityNumber(where, in.identity()); !s.ok()) return s;
  w.identity = in.identity();
  for (int i = 0; i < in.ips_size(); ++i) {
    absl::StatusOr<IpAddress> ip = FromProto(in.ips(i));
    if (!ip.ok()) return Invalid(absl::StrCat(where, " ips[", i, "]"), ip.status().message());
    for (const IpAddress& other : w.ips) {
      if (other.family == ip->family) {
        return Invalid(absl::StrCat(where, " ips[", i, "]"), "a second address of one family");
      }
    }
    w.ips.push_back(*ip);
  }
  std::sort(w.ips.begin(), w.ips.end());
  w.labels = LabelsFromProto(in.labels());
  w.node_name = in.node_name();
  return w;
}

void AddWorkloads(const WorkloadState& state, v1::Snapshot& out) {
  for (const auto& [key, w] : state.workloads) *out.add_workloads() = ToProto(w);
  for (const auto& [principal, identity] : state.identities) {
    v1::Identity* row = out.add_identities();
    row->set_principal(principal);
    row->set_identity(identity);
  }
  for (const auto& [name, labels] : state.namespaces) {
    *out.add_namespaces() = NamespaceToProto(name, labels);
  }
}

absl::StatusOr<WorkloadState> WorkloadsFromSnapshot(const v1::Snapshot& snapshot) {
  WorkloadState out;
  for (const v1::Identity& row : snapshot.identities()) {
    if (out.identities.contains(row.principal())) {
      return Invalid(absl::StrCat("identity ", row.principal()), "listed twice");
    }
    if (absl::Status s = AddIdentity(row, out.identities); !s.ok()) return s;
  }
  for (const v1::Workload& in : snapshot.workloads()) {
    absl::StatusOr<Workload> w = FromProto(in);
    if (!w.ok()) return w.status();
    WorkloadKey key = w->key();
    if (!out.workloads.emplace(key, *std::move(w)).second) {
      return Invalid(absl::StrCat("workload ", key.ToString()), "listed twice");
    }
  }
  for (const v1::Namespace& ns : snapshot.namespaces()) {
    out.namespaces[ns.name()] = LabelsFromProto(ns.labels());
  }
  if (absl::Status s = CheckWorkloadState(out); !s.ok()) return s;
  return out;
}

void AddWorkloadDelta(const WorkloadState& base, const WorkloadState& target, v1::Delta& out) {
  for (const auto& [key, w] : target.workloads) {
    auto it = base.workloads.find(key);
    if (it == base.workloads.end() || !(it->second == w))
      *out.add_upserted_workloads() = ToProto(w);
  }
  for (const auto& [key, w] : base.workloads) {
    if (target.workloads.contains(key)) continue;
    v1::WorkloadRef* ref = out.add_removed_workloads();
    ref->set_namespace_(key.namespace_name);
    ref->set_name(key.name);
  }
  for (const auto& [principal, identity] : target.identities) {
    auto it = base.identities.find(principal);
    if (it != base.identities.end() && it->second == identity) continue;
    v1::Identity* row = out.add_upserted_identities();
    row->set_principal(principal);
    row->set_identity(identity);
  }
  for (const auto& [principal, identity] : base.identities) {
    if (!target.identities.contains(principal)) out.add_removed_principals(principal);
  }
  for (const auto& [name, labels] : target.namespaces) {
    auto it = base.namespaces.find(name);
    if (it == base.namespaces.end() || it->second != labels) {
      *out.add_upserted_namespaces() = NamespaceToProto(name, labels);
    }
  }
  for (const auto& [name, labels] : base.namespaces) {
    if (!target.namespaces.contains(name)) out.add_removed_namespaces(name);
  }
}

absl::Status ApplyWorkloadDelta(const v1::Delta& delta, WorkloadState& state) {
  for (const v1::WorkloadRef& ref : delta.removed_workloads()) {
    state.workloads.erase(WorkloadKey{ref.namespace_(), ref.name()});
  }
  for (const v1::Workload& in : delta.upserted_workloads()) {
    absl::StatusOr<Workload> w = FromProto(in);
    if (!w.ok()) return w.status();
    state.workloads[w->key()] = *std::move(w);
  }
  for (const std::string& principal : delta.removed_principals()) {
    state.identities.erase(principal);
  }
  for (const v1::Identity& row : delta.upserted_identities()) {
    if (absl::Status s = AddIdentity(row, state.identities); !s.ok()) return s;
  }
  for (const std::string& name : delta.removed_namespaces()) state.namespaces.erase(name);
  for (const v1::Namespace& ns : delta.upserted_namespaces()) {
    state.namespaces[ns.name()] = LabelsFromProto(ns.labels());
  }
  return CheckWorkloadState(state);
}

absl::Status CheckWorkloadState(const WorkloadState& state) {
  std::set<std::string> used;
  for (const auto& [key, w] : state.workloads) {
    const std::string principal = w.principal();
    auto it = state.identities.find(principal);
    if (it == state.identities.end()) {
      return Invalid(absl::StrCat("workload ", key.ToString()),
                     absl::StrCat("principal ", principal, " is not in the identity table"));
    }
    if (it->second != w.identity) {
      return Invalid(absl::StrCat("workload ", key.ToString()),
                     absl::StrCat("identity ", w.identity, " but ", principal, " is ", it->second));
    }
    used.insert(principal);
  }
  std::map<uint32_t, std::string> owners;
  for (const auto& [principal, identity] : state.identities) {
    if (!used.contains(principal)) {
      return Invalid(absl::StrCat("identity ", principal), "no workload has this principal");
    }
    auto [owner, inserted] = owners.emplace(identity, principal);
    if (!inserted) {
      return Invalid(absl::StrCat("identity ", identity),
                     absl::StrCat("given to both ", owner->second, " and ", principal));
    }
  }
  return absl::OkStatus();
}

}  // namespace sockmesh::model
