// SPDX-License-Identifier: Apache-2.0
// sockmesh.io/v1alpha1 AuthorizationPolicy as the control plane holds it after parsing, and the
// compiled form the datapath looks up (CompiledPolicy, the model of the sockmesh.v1 message of the
// same name: see the proto's comments for the evaluation order).
//
// The CRD is shaped like Istio's security.istio.io/v1 AuthorizationPolicy, L4 fields only:
// selector, action, rules[].from[].source (principals, namespaces, ipBlocks and their not-forms)
// and rules[].to[].operation.ports.
#ifndef SOCKMESH_CONTROL_PLANE_MODEL_AUTHORIZATION_POLICY_H_
#define SOCKMESH_CONTROL_PLANE_MODEL_AUTHORIZATION_POLICY_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "control_plane/model/ip_address.h"
#include "control_plane/model/workload_model.h"

namespace sockmesh::model {

// Istio's root namespace: a policy here without a selector applies to every workload of the mesh.
inline constexpr std::string_view kDefaultRootNamespace = "sockmesh-system";

enum class PolicyAction : uint8_t { kAllow, kDeny, kAudit };
std::string_view PolicyActionName(PolicyAction action);  // "ALLOW" / "DENY" / "AUDIT"

// An address block: `len` leading bits of `addr` (0..32 for IPv4, 0..128 for IPv6), host bits
// zero.
struct IpPrefix {
  IpAddress addr;
  uint8_t len = 0;
  std::string ToString() const;  // "10.0.0.0/8"
  // Whether `ip` (same family) lies inside.
  bool Contains(const IpAddress& ip) const;
  // Whether `other` (same family) lies inside, i.e. is this prefix or a longer one within it.
  bool Covers(const IpPrefix& other) const;
  auto operator<=>(const IpPrefix&) const = default;
};

// One `from[].source`: its fields are ANDed; an empty list means the field is not set.
struct PolicySource {
  std::vector<std::string> principals;  // exact, "*", "prefix*" or "*suffix"
  std::vector<std::string> not_principals;
  std::vector<std::string> namespaces;  // same forms as principals
  std::vector<std::string> not_namespaces;
  std::vector<IpPrefix> ip_blocks;
  std::vector<IpPrefix> not_ip_blocks;
  bool operator==(const PolicySource&) const = default;
};

// One `to[].operation`: the ports it names; empty = any port.
struct PolicyOperation {
  std::vector<uint16_t> ports;
  bool operator==(const PolicyOperation&) const = default;
};

// A rule matches when one of `from` matches (or `from` is empty) and one of `to` matches (or `to`
// is empty).
struct PolicyRule {
  std::vector<PolicySource> from;
  std::vector<PolicyOperation> to;
  bool operator==(const PolicyRule&) const = default;
};

// A policy as written, once validated.
struct AuthorizationPolicy {
  std::string namespace_name;
  std::string name;
  // spec.selector.matchLabels; nullopt when there is no selector (every workload of the namespace,
  // or of the mesh for the root namespace).
  std::optional<Labels> selector;
  PolicyAction action = PolicyAction::kAllow;
  std::vector<PolicyRule> rules;  // none: the policy matches nothing (`spec: {}` denies all)
  bool operator==(const AuthorizationPolicy&) const = default;
};

// Istio's string match: "*" matches anything, "x*" a prefix, "*x" a suffix, otherwise exact.
bool MatchesPattern(std::string_view pattern, std::string_view value);

// ---- Compiled -------------------------------------------------------------------------------

// Row sources and ports that mean "any" (see PolicyRow in the proto).
inline constexpr uint32_t kAnySourceIdentity = 0xFFFFFFFF;
inline constexpr uint16_t kAnyPort = 0;

struct PolicyRef {
  uint32_t policy_id = 0;  // >= 1
  std::string namespace_name;
  std::string name;
  PolicyAction action = PolicyAction::kAllow;
  bool operator==(const PolicyRef&) const = default;
};

struct PolicyRow {
  uint32_t source_identity = kAnySourceIdentity;
  uint16_t port = kAnyPort;
  std::optional<IpPrefix> source_prefix;  // nullopt = any address
  uint32_t deny_policy_id = 0;
  uint32_t allow_policy_id = 0;
  uint32_t audit_policy_id = 0;
  bool operator==(const PolicyRow&) const = default;
};

struct PolicySet {
  uint32_t policy_set_id = 0;  // >= 1
  bool has_allow = false;
  bool source_address_dependent = false;
  std::vector<PolicyRow> rows;  // sorted by (source_identity, port, source_prefix)
  bool operator==(const PolicySet&) const = default;
};

struct PolicyEndpoint {
  uint32_t endpoint_id = 0;  // >= 1
  WorkloadKey workload;
  std::vector<IpAddress> ips;
  uint32_t policy_set_id = 0;
  bool operator==(const PolicyEndpoint&) const = default;
};

struct CompiledPolicy {
  std::vector<PolicyRef> policies;        // by policy_id
  std::vector<PolicySet> sets;            // by policy_set_id
  std::vector<PolicyEndpoint> endpoints;  // by workload
  bool operator==(const CompiledPolicy&) const = default;
};

// ---- Status ---------------------------------------------------------------------------------

// A metav1.Condition without its lastTransitionTime, which the writer of the status keeps (it
// changes only when `status` does).
struct PolicyCondition {
  std::string type;     // "Accepted" / "ResolvedRefs"
  bool status = false;  // "True" / "False"
  std::string reason;
  std::string message;
  int64_t observed_generation = 0;
  bool operator==(const PolicyCondition&) const = default;
};

// What `sockmeshctl policies` shows and the status subresource holds, per policy.
struct PolicyStatus {
  std::string namespace_name;
  std::string name;
  PolicyAction action = PolicyAction::kAllow;
  std::string source;  // the file (or "kubernetes-api") it came from
  std::vector<PolicyCondition> conditions;
  std::vector<WorkloadKey> selected_workloads;
  bool operator==(const PolicyStatus&) const = default;
};

}  // namespace sockmesh::model

#endif  // SOCKMESH_CONTROL_PLANE_MODEL_AUTHORIZATION_POLICY_H_
