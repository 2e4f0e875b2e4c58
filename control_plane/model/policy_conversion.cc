// SPDX-License-Identifier: Apache-2.0
#include "control_plane/model/policy_conversion.h"

#include <set>
#include <tuple>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "control_plane/model/proto_conversion.h"

namespace sockmesh::model {
namespace {

absl::Status Invalid(absl::string_view where, absl::string_view detail) {
  return absl::InvalidArgumentError(absl::StrCat("policy: ", where, ": ", detail));
}

v1::PolicyAction ActionToProto(PolicyAction a) {
  switch (a) {
    case PolicyAction::kDeny:
      return v1::POLICY_ACTION_DENY;
    case PolicyAction::kAudit:
      return v1::POLICY_ACTION_AUDIT;
    case PolicyAction::kAllow:
      break;
  }
  return v1::POLICY_ACTION_ALLOW;
}

absl::StatusOr<PolicyRef> RefFromProto(const v1::PolicyRef& in, const std::string& where) {
  PolicyRef out{.policy_id = in.policy_id(), .namespace_name = in.namespace_(), .name = in.name()};
  if (out.policy_id == 0) return Invalid(where, "policy_id 0: ids start at 1");
  if (out.namespace_name.empty() || out.name.empty())
    return Invalid(where, "namespace and name must be set");
  switch (in.action()) {
    case v1::POLICY_ACTION_ALLOW:
      out.action = PolicyAction::kAllow;
      break;
    case v1::POLICY_ACTION_DENY:
      out.action = PolicyAction::kDeny;
      break;
    case v1::POLICY_ACTION_AUDIT:
      out.action = PolicyAction::kAudit;
      break;
    default:
      return Invalid(where, absl::StrCat("unknown action ", in.action()));
  }
  return out;
}

absl::StatusOr<PolicyRow> RowFromProto(const v1::PolicyRow& in, const std::string& where,
                                       const std::set<uint32_t>& policy_ids) {
  PolicyRow out;
  out.source_identity = in.source_identity();
  if (in.port() > 65535) return Invalid(where, absl::StrCat("port ", in.port(), " > 65535"));
  out.port = static_cast<uint16_t>(in.port());
  if (in.has_source_prefix()) {
    absl::StatusOr<IpAddress> addr = FromProto(in.source_prefix());
    if (!addr.ok()) return Invalid(where, absl::StrCat("source_prefix: ", addr.status().message()));
    const uint32_t max = addr->is_v4() ? 32 : 128;
    if (in.source_prefix_len() > max) {
      return Invalid(where, absl::StrCat("source_prefix_len ", in.source_prefix_len(), " > ", max));
    }
    out.source_prefix =
        IpPrefix{.addr = *addr, .len = static_cast<uint8_t>(in.source_prefix_len())};
  } else if (in.source_prefix_len() != 0) {
    return Invalid(where, "source_prefix_len without source_prefix");
  }
  out.deny_policy_id = in.deny_policy_id();
  out.allow_policy_id = in.allow_policy_id();
  out.audit_policy_id = in.audit_policy_id();
  for (uint32_t id : {out.deny_policy_id, out.allow_policy_id, out.audit_policy_id}) {
    if (id != 0 && !policy_ids.contains(id)) {
      return Invalid(where, absl::StrCat("policy id ", id, " is not in policies"));
    }
  }
  return out;
}

}  // namespace

v1::CompiledPolicy ToProto(const CompiledPolicy& policy) {
  v1::CompiledPolicy out;
  for (const PolicyRef& r : policy.policies) {
    v1::PolicyRef* p = out.add_policies();
    p->set_policy_id(r.policy_id);
    p->set_namespace_(r.namespace_name);
    p->set_name(r.name);
    p->set_action(ActionToProto(r.action));
  }
  for (const PolicySet& s : policy.sets) {
    v1::PolicySet* set = out.add_sets();
    set->set_policy_set_id(s.policy_set_id);
    set->set_has_allow(s.has_allow);
    set->set_source_address_dependent(s.source_address_dependent);
    for (const PolicyRow& r : s.rows) {
      v1::PolicyRow* row = set->add_rows();
      row->set_source_identity(r.source_identity);
      row->set_port(r.port);
      if (r.source_prefix.has_value()) {
        *row->mutable_source_prefix() = ToProto(r.source_prefix->addr);
        row->set_source_prefix_len(r.source_prefix->len);
      }
      row->set_deny_policy_id(r.deny_policy_id);
      row->set_allow_policy_id(r.allow_policy_id);
      row->set_audit_policy_id(r.audit_policy_id);
    }
  }
  for (const PolicyEndpoint& e : policy.endpoints) {
    v1::PolicyEndpoint* endpoint = out.add_endpoints();
    endpoint->set_endpoint_id(e.endpoint_id);
    endpoint->mutable_workload()->set_namespace_(e.workload.namespace_name);
    endpoint->mutable_workload()->set_name(e.workload.name);
    for (const IpAddress& ip : e.ips) *endpoint->add_ips() = ToProto(ip);
    endpoint->set_policy_set_id(e.policy_set_id);
  }
  return out;
}

absl::StatusOr<CompiledPolicy> FromProto(const v1::CompiledPolicy& policy) {
  CompiledPolicy out;
  std::set<uint32_t> policy_ids;
  for (int i = 0; i < policy.policies_size(); ++i) {
    const std::string where = absl::StrCat("policies[", i, "]");
    absl::StatusOr<PolicyRef> ref = RefFromProto(policy.policies(i), where);
    if (!ref.ok()) return ref.status();
    if (!policy_ids.insert(ref->policy_id).second) {
      return Invalid(where, absl::StrCat("policy_id ", ref->policy_id, " twice"));
    }
    out.policies.push_back(*std::move(ref));
  }
  std::set<uint32_t> set_ids;
  for (int i = 0; i < policy.sets_size(); ++i) {
    const v1::PolicySet& in = policy.sets(i);
    const std::string where = absl::StrCat("sets[", i, "]");
    if (in.policy_set_id() == 0) return Invalid(where, "policy_set_id 0: ids start at 1");
    if (!set_ids.insert(in.policy_set_id()).second) {
      return Invalid(where, absl::StrCat("policy_set_id ", in.policy_set_id(), " twice"));
    }
    PolicySet set{.policy_set_id = in.policy_set_id(),
                  .has_allow = in.has_allow(),
                  .source_address_dependent = in.source_address_dependent(),
                  .rows = {}};
    std::set<std::tuple<uint32_t, uint16_t, std::optional<IpPrefix>>> keys;
    for (int j = 0; j < in.rows_size(); ++j) {
      const std::string row_where = absl::StrCat(where, ".rows[", j, "]");
      absl::StatusOr<PolicyRow> row = RowFromProto(in.rows(j), row_where, policy_ids);
      if (!row.ok()) return row.status();
      if (!keys.insert({row->source_identity, row->port, row->source_prefix}).second) {
        return Invalid(row_where, "a second row for the same (source_identity, port, prefix)");
      }
      set.rows.push_back(*std::move(row));
    }
    out.sets.push_back(std::move(set));
  }
  std::set<uint32_t> endpoint_ids;
  for (int i = 0; i < policy.endpoints_size(); ++i) {
    const v1::PolicyEndpoint& in = policy.endpoints(i);
    const std::string where = absl::StrCat("endpoints[", i, "]");
    if (in.endpoint_id() == 0) return Invalid(where, "endpoint_id 0: ids start at 1");
    if (!endpoint_ids.insert(in.endpoint_id()).second) {
      return Invalid(where, absl::StrCat("endpoint_id ", in.endpoint_id(), " twice"));
    }
    if (!set_ids.contains(in.policy_set_id())) {
      return Invalid(where, absl::StrCat("policy_set_id ", in.policy_set_id(), " is not in sets"));
    }
    PolicyEndpoint e{.endpoint_id = in.endpoint_id(),
                     .workload = {in.workload().namespace_(), in.workload().name()},
                     .ips = {},
                     .policy_set_id = in.policy_set_id()};
    if (e.workload.namespace_name.empty() || e.workload.name.empty()) {
      return Invalid(where, "workload namespace and name must be set");
    }
    for (const v1::IpAddress& ip : in.ips()) {
      absl::StatusOr<IpAddress> addr = FromProto(ip);
      if (!addr.ok()) return Invalid(where, addr.status().message());
      e.ips.push_back(*addr);
    }
    out.endpoints.push_back(std::move(e));
  }
  return out;
}

v1::PolicyStatus ToProto(const PolicyStatus& status) {
  v1::PolicyStatus out;
  out.set_namespace_(status.namespace_name);
  out.set_name(status.name);
  out.set_action(ActionToProto(status.action));
  out.set_source(status.source);
  for (const PolicyCondition& c : status.conditions) {
    v1::PolicyCondition* condition = out.add_conditions();
    condition->set_type(c.type);
    condition->set_status(c.status ? "True" : "False");
    condition->set_reason(c.reason);
    condition->set_message(c.message);
    condition->set_observed_generation(c.observed_generation);
  }
  for (const WorkloadKey& w : status.selected_workloads) {
    v1::WorkloadRef* ref = out.add_selected_workloads();
    ref->set_namespace_(w.namespace_name);
    ref->set_name(w.name);
  }
  return out;
}

PolicyStatus FromProto(const v1::PolicyStatus& status) {
  PolicyStatus out;
  out.namespace_name = status.namespace_();
  out.name = status.name();
  out.action = status.action() == v1::POLICY_ACTION_DENY    ? PolicyAction::kDeny
               : status.action() == v1::POLICY_ACTION_AUDIT ? PolicyAction::kAudit
                                                            : PolicyAction::kAllow;
  out.source = status.source();
  for (const v1::PolicyCondition& c : status.conditions()) {
    out.conditions.push_back(PolicyCondition{.type = c.type(),
                                             .status = c.status() == "True",
                                             .reason = c.reason(),
                                             .message = c.message(),
                                             .observed_generation = c.observed_generation()});
  }
  for (const v1::WorkloadRef& w : status.selected_workloads()) {
    out.selected_workloads.push_back(WorkloadKey{w.namespace_(), w.name()});
  }
  return out;
}

void AddPolicyDelta(const CompiledPolicy& base, const CompiledPolicy& target, v1::Delta& out) {
  if (!(base == target)) *out.mutable_policy() = ToProto(target);
}

}  // namespace sockmesh::model
