// SPDX-License-Identifier: Apache-2.0
#include "userspace/ctl/manifest_validation.h"

#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "control_plane/sources/authorization_policy_builder.h"
#include "control_plane/sources/desired_state_builder.h"
#include "control_plane/sources/manifest_directory.h"
#include "control_plane/sources/manifest_parser.h"
#include "control_plane/sources/workload_builder.h"
#include "nlohmann/json.hpp"
#include "userspace/ctl/policy_status_view.h"

namespace sockmesh::ctl {
namespace {

void Count(const model::DesiredState& state, ValidationResult& result) {
  result.frontends = state.size();
  for (const auto& [frontend, entry] : state) result.backends += entry.backends.size();
  result.policies = state.policy_status;
  // A refused policy would not be applied: for an offline check that is an error.
  for (const model::PolicyStatus& p : state.policy_status) {
    if (std::string refusal = sources::PolicyRefusal(p); !refusal.empty()) {
      result.errors.push_back(std::move(refusal));
    }
  }
}

// The policies' conditions against `state`, which already has them applied: applying them again
// to a copy changes nothing and yields the same conditions.
void PolicyConditions(const std::vector<sources::TrafficPolicyManifest>& policies,
                      model::DesiredState state, ValidationResult& result) {
  absl::StatusOr<std::vector<sources::TrafficPolicyStatus>> statuses =
      sources::ApplyTrafficPolicies(policies, state);
  if (statuses.ok()) result.traffic_policies = *std::move(statuses);
}

std::string ConditionText(const sources::PolicyCondition& c) {
  return absl::StrCat(c.type, "=", c.status ? "True" : "False", " (", c.reason, "): ", c.message);
}

}  // namespace

absl::StatusOr<ValidationResult> ValidateManifests(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  ValidationResult result;
  if (fs::is_directory(path, ec)) {
    sources::ManifestDirectory dir(path);
    absl::StatusOr<sources::ReloadResult> reload = dir.Reload();
    if (!reload.ok()) return reload.status();
    result.files = reload->changed_files.size();
    result.errors = reload->errors;
    result.notes = reload->notes;
    Count(reload->state, result);
    sources::ParsedManifests all;
    for (const auto& entry : fs::directory_iterator(path, ec)) {
      const std::string ext = entry.path().extension().string();
      if (ext != ".yaml" && ext != ".yml") continue;
      absl::StatusOr<sources::ParsedManifests> parsed = sources::ParseManifestFile(entry.path());
      if (parsed.ok()) sources::AppendManifests(*parsed, all);
    }
    PolicyConditions(all.traffic_policies, reload->state, result);
    return result;
  }
  if (!fs::exists(path, ec)) {
    return absl::NotFoundError(absl::StrCat(path, ": no such file or directory"));
  }
  result.files = 1;
  absl::StatusOr<sources::ParsedManifests> parsed = sources::ParseManifestFile(path);
  if (!parsed.ok()) {
    result.errors.push_back(std::string(parsed.status().message()));
    return result;
  }
  result.notes = parsed->notes;
  absl::StatusOr<model::DesiredState> state = sources::BuildDesiredState(*parsed, {});
  if (!state.ok()) {
    result.errors.push_back(std::string(state.status().message()));
    return result;
  }
  Count(*state, result);
  PolicyConditions(parsed->traffic_policies, *std::move(state), result);
  return result;
}

std::string FormatValidationText(const std::string& path, const ValidationResult& result) {
  std::string out;
  for (const std::string& note : result.notes) absl::StrAppend(&out, "note: ", note, "\n");
  for (const model::PolicyStatus& p : result.policies) {
    absl::StrAppend(&out, "policy: ", sources::DescribePolicyStatus(p), "\n");
  }
  for (const std::string& error : result.errors) absl::StrAppend(&out, "error: ", error, "\n");
  for (const sources::TrafficPolicyStatus& p : result.traffic_policies) {
    for (const sources::PolicyCondition& c : p.conditions) {
      absl::StrAppend(&out, "TrafficPolicy ", p.namespace_name, "/", p.name, ": ", ConditionText(c),
                      "\n");
    }
  }
  if (result.valid()) {
    absl::StrAppend(&out, path, ": valid (", result.files, " files, ", result.frontends,
                    " frontends, ", result.backends, " backends)\n");
  } else {
    absl::StrAppend(&out, path, ": invalid (", result.errors.size(), " errors)\n");
  }
  return out;
}

std::string FormatValidationJson(const std::string& path, const ValidationResult& result) {
  nlohmann::ordered_json out{{"path", path},
                             {"valid", result.valid()},
                             {"files", result.files},
                             {"frontends", result.frontends},
                             {"backends", result.backends},
                             {"errors", result.errors},
                             {"notes", result.notes}};
  nlohmann::ordered_json policies = nlohmann::ordered_json::array();
  for (const model::PolicyStatus& p : result.policies) policies.push_back(PolicyStatusJson(p));
  out["policies"] = policies;
  nlohmann::ordered_json traffic_policies = nlohmann::ordered_json::array();
  for (const sources::TrafficPolicyStatus& p : result.traffic_policies) {
    nlohmann::ordered_json conditions = nlohmann::ordered_json::array();
    for (const sources::PolicyCondition& c : p.conditions) {
      conditions.push_back({{"type", c.type},
                            {"status", c.status ? "True" : "False"},
                            {"reason", c.reason},
                            {"message", c.message}});
    }
    traffic_policies.push_back({{"namespace", p.namespace_name},
                        {"name", p.name},
                        {"source", p.source},
                        {"conditions", std::move(conditions)}});
  }
  out["traffic_policies"] = std::move(traffic_policies);
  return out.dump(2) + "\n";
}

}  // namespace sockmesh::ctl
