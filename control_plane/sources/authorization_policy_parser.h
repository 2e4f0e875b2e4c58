// SPDX-License-Identifier: Apache-2.0
// Reads sockmesh.io/v1alpha1 AuthorizationPolicy objects (see model/authorization_policy.h).
//
// A policy whose spec is wrong is not a broken file: it is parsed into a manifest that carries
// the rejection (reason UnsupportedField for L7 and other fields sockmesh does not enforce,
// Invalid for malformed values), with the field path and value, so the policy is refused alone
// and whole (never partially applied) and its status says why. Only a policy that cannot be named
// (bad metadata) fails its document, like every other kind.
#ifndef SOCKMESH_CONTROL_PLANE_SOURCES_AUTHORIZATION_POLICY_PARSER_H_
#define SOCKMESH_CONTROL_PLANE_SOURCES_AUTHORIZATION_POLICY_PARSER_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "control_plane/model/authorization_policy.h"

namespace YAML {
class Node;
}

namespace sockmesh::sources {

inline constexpr std::string_view kAuthorizationPolicyKind = "AuthorizationPolicy";
// Condition reasons of a refused policy.
inline constexpr std::string_view kReasonUnsupportedField = "UnsupportedField";
inline constexpr std::string_view kReasonInvalid = "Invalid";

struct AuthorizationPolicyManifest {
  std::string source;  // the file (or "kubernetes-api") it came from
  std::string namespace_name;
  std::string name;
  int64_t generation = 0;  // metadata.generation; 0 when absent (standalone files)
  model::PolicyAction action = model::PolicyAction::kAllow;  // as written, even when refused
  // The validated policy; nullopt when refused.
  std::optional<model::AuthorizationPolicy> policy;
  std::string reject_reason;   // kReasonUnsupportedField / kReasonInvalid when refused
  std::string reject_message;  // "spec.rules[0].to[0].operation.methods: ...", with the value
  bool operator==(const AuthorizationPolicyManifest&) const = default;

  // "AuthorizationPolicy ns/name".
  std::string Describe() const;
};

// Parses one AuthorizationPolicy document. `object` is the whole document (apiVersion, kind,
// metadata, spec); `object_label` is how errors name it before its metadata is read ("document
// 3 (AuthorizationPolicy)"). Fails (InvalidArgument "<file>: <object>: <field>: <detail>") only on
// bad metadata; a bad spec yields a refused manifest.
absl::StatusOr<AuthorizationPolicyManifest> ParseAuthorizationPolicy(const YAML::Node& object,
                                                                     std::string_view file,
                                                                     std::string_view object_label);

}  // namespace sockmesh::sources

#endif  // SOCKMESH_CONTROL_PLANE_SOURCES_AUTHORIZATION_POLICY_PARSER_H_
