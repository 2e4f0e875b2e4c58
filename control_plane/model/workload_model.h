// SPDX-License-Identifier: Apache-2.0
// Workloads and their identities, as the control plane streams them to every node. A workload is a
// Kubernetes Pod or a mesh WorkloadEntry (a process outside Kubernetes); its identity is the
// principal of its namespace and service account, `cluster.local/ns/<ns>/sa/<sa>`, which the
// control plane numbers once for all nodes (identity_allocator.h). Policy (a later step) matches
// on these numbers in the kernel.
#ifndef SOCKMESH_CONTROL_PLANE_MODEL_WORKLOAD_MODEL_H_
#define SOCKMESH_CONTROL_PLANE_MODEL_WORKLOAD_MODEL_H_

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "control_plane/model/ip_address.h"

namespace sockmesh::model {

// Numbers below kFirstAllocatedIdentity are never given to a principal; the datapath and policy
// use them for peers that have no workload identity.
inline constexpr uint32_t kIdentityUnknown = 0;  // not a known workload: the world
inline constexpr uint32_t kIdentityHost = 1;     // the node itself (host-network processes)
inline constexpr uint32_t kFirstAllocatedIdentity = 256;
// Identities fit 24 bits so that policy maps can pack them with other fields.
inline constexpr uint32_t kIdentitySpace = 1u << 24;

// Kubernetes' trust domain and the service account a Pod gets when it names none.
inline constexpr std::string_view kTrustDomain = "cluster.local";
inline constexpr std::string_view kDefaultServiceAccount = "default";

// "cluster.local/ns/<namespace>/sa/<service account>", as Istio spells a SPIFFE principal.
std::string Principal(std::string_view namespace_name, std::string_view service_account);

enum class WorkloadKind : uint8_t { kPod, kWorkloadEntry };
std::string_view WorkloadKindName(WorkloadKind kind);  // "Pod" / "WorkloadEntry"

struct WorkloadKey {
  std::string namespace_name;
  std::string name;
  auto operator<=>(const WorkloadKey&) const = default;
  std::string ToString() const { return namespace_name + "/" + name; }
};

struct Workload {
  WorkloadKind kind = WorkloadKind::kPod;
  std::string namespace_name;
  std::string name;
  std::string service_account = std::string(kDefaultServiceAccount);
  std::map<std::string, std::string> labels;
  std::vector<IpAddress> ips;  // sorted, no duplicates; may be empty (a Pod not yet scheduled)
  std::string node_name;       // "" when unknown (a WorkloadEntry, an unscheduled Pod)
  uint32_t identity = kIdentityUnknown;  // the number of principal()
  std::string principal() const { return Principal(namespace_name, service_account); }
  WorkloadKey key() const { return {namespace_name, name}; }
  bool operator==(const Workload&) const = default;
};

using Labels = std::map<std::string, std::string>;

// Everything the node needs about workloads: each workload, the principal -> number table (every
// principal with at least one workload), and the labels of the namespaces the source knows (policy
// selects namespaces by name or label; a workload in an unknown namespace is still valid).
struct WorkloadState {
  std::map<WorkloadKey, Workload> workloads;
  std::map<std::string, uint32_t> identities;  // principal -> identity
  std::map<std::string, Labels> namespaces;    // namespace -> labels
  bool operator==(const WorkloadState&) const = default;
};

}  // namespace sockmesh::model

#endif  // SOCKMESH_CONTROL_PLANE_MODEL_WORKLOAD_MODEL_H_
