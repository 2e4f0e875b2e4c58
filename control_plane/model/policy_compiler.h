// SPDX-License-Identifier: Apache-2.0
// Compiles AuthorizationPolicies with the workload and identity tables into the CompiledPolicy the
// datapath looks up: per distinct list of policies selecting a workload, one set of exact-match
// rows (source identity, destination port, source prefix) carrying the DENY/ALLOW/AUDIT policy
// ids that match them, so the kernel decides with four LPM lookups whatever the number of
// policies (see the CompiledPolicy comment in control_plane.proto for the evaluation order).
//
// Expansion: the fields of one `source` are ANDed, `from` entries ORed, `to` entries ORed, and a
// rule is its from AND its to; each becomes the product of its identities, ports and prefixes.
// not-forms are the complement over the known identities plus identity 0 (unknown/world), and
// over the address space for notIpBlocks. A source with no identity field is any identity; a rule
// without ports is any port; without ipBlocks, any address.
#ifndef SOCKMESH_CONTROL_PLANE_MODEL_POLICY_COMPILER_H_
#define SOCKMESH_CONTROL_PLANE_MODEL_POLICY_COMPILER_H_

#include <string>
#include <string_view>
#include <vector>

#include "control_plane/model/authorization_policy.h"
#include "control_plane/model/workload_model.h"

namespace sockmesh::model {

// What one policy's references resolved to, for its ResolvedRefs condition.
struct PolicyResolution {
  std::vector<WorkloadKey> selected_workloads;  // sorted
  // Exact principals and namespaces (no '*') that no workload (or Namespace) has yet.
  std::vector<std::string> unknown_principals;
  std::vector<std::string> unknown_namespaces;
};

struct PolicyCompilation {
  CompiledPolicy compiled;
  std::vector<PolicyResolution> resolutions;  // one per input policy, in input order
};

// `policies` must be unique on (namespace, name); they are numbered 1..N in (namespace, name)
// order. `previous` (the last compiled policy) keeps workloads on their endpoint ids.
PolicyCompilation CompilePolicies(const std::vector<AuthorizationPolicy>& policies,
                                  const WorkloadState& workloads, const CompiledPolicy& previous,
                                  std::string_view root_namespace = kDefaultRootNamespace);

// The prefixes of `from` not covered by `minus` (same-family CIDR difference; at most
// from.len..minus.len new prefixes per subtraction). Exposed for tests.
std::vector<IpPrefix> SubtractPrefixes(std::vector<IpPrefix> from,
                                       const std::vector<IpPrefix>& minus);

}  // namespace sockmesh::model

#endif  // SOCKMESH_CONTROL_PLANE_MODEL_POLICY_COMPILER_H_
