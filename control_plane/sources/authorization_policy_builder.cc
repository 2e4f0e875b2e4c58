// SPDX-License-Identifier: Apache-2.0
#include "control_plane/sources/authorization_policy_builder.h"

#include <algorithm>
#include <map>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "control_plane/model/policy_compiler.h"

namespace sockmesh::sources {
namespace {

using model::PolicyCondition;

std::string SelectorText(const std::optional<model::Labels>& selector) {
  if (!selector.has_value()) return "(none)";
  std::vector<std::string> parts;
  for (const auto& [k, v] : *selector) parts.push_back(absl::StrCat(k, "=", v));
  return absl::StrCat("{", absl::StrJoin(parts, ","), "}");
}

PolicyCondition ResolvedRefs(const model::AuthorizationPolicy& policy,
                             const model::PolicyResolution& resolution, int64_t generation) {
  PolicyCondition c;
  c.type = kConditionResolvedRefs;
  c.observed_generation = generation;
  if (resolution.selected_workloads.empty()) {
    c.reason = "NoMatchingWorkloads";
    c.message = policy.namespace_name == model::kDefaultRootNamespace
                    ? absl::StrCat("selector ", SelectorText(policy.selector),
                                   " matches no workload in the mesh")
                    : absl::StrCat("selector ", SelectorText(policy.selector),
                                   " matches no workload in namespace ", policy.namespace_name);
  } else if (!resolution.unknown_principals.empty()) {
    c.reason = "UnknownPrincipal";
    c.message = absl::StrCat("no workload has principal ",
                             absl::StrJoin(resolution.unknown_principals, ", "), " yet");
  } else if (!resolution.unknown_namespaces.empty()) {
    c.reason = "UnknownNamespace";
    c.message = absl::StrCat("no workload or Namespace in namespace ",
                             absl::StrJoin(resolution.unknown_namespaces, ", "), " yet");
  } else {
    c.status = true;
    c.reason = "ResolvedRefs";
    c.message = absl::StrCat("selects ", resolution.selected_workloads.size(), " workload",
                             resolution.selected_workloads.size() == 1 ? "" : "s");
  }
  return c;
}

}  // namespace

absl::Status BuildAuthorizationPolicies(const std::vector<AuthorizationPolicyManifest>& policies,
                                        const model::DesiredState& previous,
                                        model::DesiredState& state) {
  std::map<std::pair<std::string, std::string>, const AuthorizationPolicyManifest*> seen;
  for (const AuthorizationPolicyManifest& p : policies) {
    auto [it, inserted] = seen.emplace(std::pair{p.namespace_name, p.name}, &p);
    if (!inserted) {
      return absl::InvalidArgumentError(absl::StrCat(p.Describe(), " is defined twice: in ",
                                                     it->second->source, " and in ", p.source));
    }
  }
  std::vector<model::AuthorizationPolicy> accepted;
  std::vector<const AuthorizationPolicyManifest*> accepted_manifests;
  for (const AuthorizationPolicyManifest& p : policies) {
    if (!p.policy.has_value()) continue;
    accepted.push_back(*p.policy);
    accepted_manifests.push_back(&p);
  }
  model::PolicyCompilation compilation =
      model::CompilePolicies(accepted, state.workloads, previous.policy);
  state.policy = std::move(compilation.compiled);

  std::map<const AuthorizationPolicyManifest*, const model::PolicyResolution*> resolutions;
  for (size_t i = 0; i < accepted_manifests.size(); ++i) {
    resolutions[accepted_manifests[i]] = &compilation.resolutions[i];
  }
  state.policy_status.clear();
  for (const AuthorizationPolicyManifest& p : policies) {
    model::PolicyStatus status;
    status.namespace_name = p.namespace_name;
    status.name = p.name;
    status.action = p.action;
    status.source = p.source;
    PolicyCondition accepted_condition;
    accepted_condition.type = kConditionAccepted;
    accepted_condition.observed_generation = p.generation;
    auto found = resolutions.find(&p);
    if (found == resolutions.end()) {
      accepted_condition.reason = p.reject_reason;
      accepted_condition.message = p.reject_message + " (policy not applied)";
      status.conditions.push_back(std::move(accepted_condition));
    } else {
      accepted_condition.status = true;
      accepted_condition.reason = "Accepted";
      accepted_condition.message = "compiled into the datapath's policy";
      status.conditions.push_back(std::move(accepted_condition));
      status.conditions.push_back(ResolvedRefs(*p.policy, *found->second, p.generation));
      status.selected_workloads = found->second->selected_workloads;
    }
    state.policy_status.push_back(std::move(status));
  }
  std::sort(state.policy_status.begin(), state.policy_status.end(),
            [](const model::PolicyStatus& a, const model::PolicyStatus& b) {
              return std::tie(a.namespace_name, a.name) < std::tie(b.namespace_name, b.name);
            });
  return absl::OkStatus();
}

std::string DescribePolicyStatus(const model::PolicyStatus& status) {
  std::string text = absl::StrCat("AuthorizationPolicy ", status.namespace_name, "/", status.name,
                                  " (", status.source, "):");
  std::string message;
  for (const PolicyCondition& c : status.conditions) {
    absl::StrAppend(&text, " ", c.type, "=", c.status ? "True" : "False");
    if (!c.status) {
      absl::StrAppend(&text, "/", c.reason);
      if (message.empty()) message = c.message;
    }
  }
  if (!message.empty()) absl::StrAppend(&text, ": ", message);
  return text;
}

std::string PolicyRefusal(const model::PolicyStatus& status) {
  if (status.conditions.empty() || status.conditions.front().status) return "";
  return absl::StrCat(status.source, ": AuthorizationPolicy ", status.namespace_name, "/",
                      status.name, ": ", status.conditions.front().message);
}

}  // namespace sockmesh::sources
