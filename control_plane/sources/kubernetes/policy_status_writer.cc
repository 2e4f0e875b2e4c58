// SPDX-License-Identifier: Apache-2.0
#include "control_plane/sources/kubernetes/policy_status_writer.h"

#include "absl/strings/str_cat.h"
#include "control_plane/sources/kubernetes/object_cache.h"
#include "nlohmann/json.hpp"

namespace sockmesh::sources::kubernetes {

std::string PolicyStatusPath(const std::string& namespace_name, const std::string& name) {
  return absl::StrCat("/apis/sockmesh.io/v1alpha1/namespaces/", namespace_name,
                      "/authorizationpolicies/", name, "/status");
}

std::string PolicyStatusWriter::Patch(const model::PolicyStatus& status,
                                      std::map<std::string, Transition>& transitions,
                                      absl::Time now) {
  const std::string now_text = absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", now, absl::UTCTimeZone());
  nlohmann::ordered_json conditions = nlohmann::ordered_json::array();
  for (const model::PolicyCondition& c : status.conditions) {
    auto it = transitions.find(c.type);
    if (it == transitions.end() || it->second.status != c.status) {
      transitions[c.type] = Transition{.status = c.status, .time = now_text};
    }
    conditions.push_back({{"type", c.type},
                          {"status", c.status ? "True" : "False"},
                          {"reason", c.reason},
                          {"message", c.message},
                          {"observedGeneration", c.observed_generation},
                          {"lastTransitionTime", transitions[c.type].time}});
  }
  // A merge patch replaces the list whole, so conditions no longer computed disappear.
  return nlohmann::ordered_json{{"status", {{"conditions", conditions}}}}.dump();
}

std::vector<std::string> PolicyStatusWriter::Write(const std::vector<model::PolicyStatus>& statuses,
                                                   absl::Time now) {
  std::vector<std::string> errors;
  for (const model::PolicyStatus& status : statuses) {
    if (status.source != kApiSourceLabel) continue;
    Written& written = written_[{status.namespace_name, status.name}];
    if (!written.conditions.empty() && written.conditions == status.conditions) continue;
    std::map<std::string, Transition> transitions = written.transitions;
    const std::string path = PolicyStatusPath(status.namespace_name, status.name);
    absl::StatusOr<HttpResponse> response =
        client_->MergePatch(path, Patch(status, transitions, now));
    if (!response.ok()) {
      errors.push_back(absl::StrCat("PATCH ", path, ": ", response.status().message()));
      continue;
    }
    if (response->status != 200) {
      errors.push_back(absl::StrCat("PATCH ", path, ": HTTP ", response->status, ": ",
                                    response->body.substr(0, 200)));
      continue;
    }
    written.conditions = status.conditions;
    written.transitions = std::move(transitions);
  }
  return errors;
}

}  // namespace sockmesh::sources::kubernetes
