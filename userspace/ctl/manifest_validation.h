// SPDX-License-Identifier: Apache-2.0
// `sockmeshctl validate`: the control plane's parsing and validation of a manifest file or
// directory, run offline, so a change can be checked before it is written where agents read it.
#ifndef SOCKMESH_USERSPACE_CTL_MANIFEST_VALIDATION_H_
#define SOCKMESH_USERSPACE_CTL_MANIFEST_VALIDATION_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "control_plane/model/authorization_policy.h"
#include "control_plane/sources/traffic_policy_compiler.h"

namespace sockmesh::ctl {

struct ValidationResult {
  size_t files = 0;
  size_t frontends = 0;  // what the files would publish when valid
  size_t backends = 0;
  std::vector<std::string> errors;  // empty = valid
  std::vector<std::string> notes;   // ignored objects
  // Every AuthorizationPolicy with its status; a refused one is also an error.
  std::vector<model::PolicyStatus> policies;
  // Each TrafficPolicy's conditions (Accepted, ResolvedRefs), as the control plane computes them.
  std::vector<sources::TrafficPolicyStatus> traffic_policies;
  bool valid() const { return errors.empty(); }
};

// A file is parsed and joined on its own; a directory goes through ManifestDirectory, the same
// code the control plane and standalone agents reload with. NotFound when `path` is missing.
absl::StatusOr<ValidationResult> ValidateManifests(const std::string& path);

std::string FormatValidationText(const std::string& path, const ValidationResult& result);
std::string FormatValidationJson(const std::string& path, const ValidationResult& result);

}  // namespace sockmesh::ctl

#endif  // SOCKMESH_USERSPACE_CTL_MANIFEST_VALIDATION_H_
