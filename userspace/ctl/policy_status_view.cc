// SPDX-License-Identifier: Apache-2.0
#include "userspace/ctl/policy_status_view.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "userspace/ctl/control_plane_call.h"
#include "userspace/ctl/text_table.h"

namespace sockmesh::ctl {
namespace {

constexpr size_t kShownWorkloads = 3;

const model::PolicyCondition* Find(const model::PolicyStatus& p, const std::string& type) {
  for (const model::PolicyCondition& c : p.conditions) {
    if (c.type == type) return &c;
  }
  return nullptr;
}

std::string Reason(const model::PolicyStatus& p) {
  for (const model::PolicyCondition& c : p.conditions) {
    if (!c.status) return c.reason;
  }
  const model::PolicyCondition* resolved = Find(p, "ResolvedRefs");
  return resolved != nullptr ? resolved->reason : "-";
}

std::string Workloads(const model::PolicyStatus& p) {
  if (p.selected_workloads.empty()) return "-";
  std::vector<std::string> names;
  for (size_t i = 0; i < p.selected_workloads.size() && i < kShownWorkloads; ++i) {
    names.push_back(p.selected_workloads[i].ToString());
  }
  std::string out = absl::StrJoin(names, ",");
  if (p.selected_workloads.size() > kShownWorkloads) {
    absl::StrAppend(&out, ",+", p.selected_workloads.size() - kShownWorkloads);
  }
  return out;
}

}  // namespace

absl::StatusOr<v1::ListPoliciesResponse> FetchPolicies(const std::string& address,
                                                       absl::Duration timeout) {
  return CallControlPlane<v1::ListPoliciesResponse>(
      address, timeout, [](auto& stub, grpc::ClientContext& context, auto& response) {
        return stub.ListPolicies(&context, v1::ListPoliciesRequest(), &response);
      });
}

std::string FormatPolicyTable(const std::vector<model::PolicyStatus>& policies) {
  TextTable table({"NAME", "NAMESPACE", "ACTION", "ACCEPTED", "REASON", "SELECTED WORKLOADS"});
  for (const model::PolicyStatus& p : policies) {
    const model::PolicyCondition* accepted = Find(p, "Accepted");
    table.AddRow({p.name, p.namespace_name, std::string(model::PolicyActionName(p.action)),
                  accepted != nullptr && accepted->status ? "True" : "False", Reason(p),
                  Workloads(p)});
  }
  return table.Render();
}

nlohmann::ordered_json PolicyStatusJson(const model::PolicyStatus& p) {
  nlohmann::ordered_json conditions = nlohmann::ordered_json::array();
  for (const model::PolicyCondition& c : p.conditions) {
    conditions.push_back({{"type", c.type},
                          {"status", c.status ? "True" : "False"},
                          {"reason", c.reason},
                          {"message", c.message},
                          {"observedGeneration", c.observed_generation}});
  }
  nlohmann::ordered_json workloads = nlohmann::ordered_json::array();
  for (const model::WorkloadKey& w : p.selected_workloads) workloads.push_back(w.ToString());
  return {{"namespace", p.namespace_name},
          {"name", p.name},
          {"action", std::string(model::PolicyActionName(p.action))},
          {"source", p.source},
          {"conditions", conditions},
          {"selectedWorkloads", workloads}};
}

std::string FormatPoliciesJson(uint64_t version, const std::vector<model::PolicyStatus>& policies) {
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  for (const model::PolicyStatus& p : policies) list.push_back(PolicyStatusJson(p));
  nlohmann::ordered_json out{{"version", version}, {"policies", list}};
  return out.dump(2) + "\n";
}

}  // namespace sockmesh::ctl
