// SPDX-License-Identifier: Apache-2.0
// Keeps the kernel's identity maps equal to the model's workloads, writing only what differs:
//  - sm_ip_identity_v1: every workload address (local or remote) -> its identity;
//  - sm_cgroup_identity_v1: the cgroup id of every local standalone workload, found as
//    <mesh cgroup>/<namespace>/<name> (workload_cgroup.h) -> its identity.
// The plan is a pure function of the model, this node's name and the cgroups found, so it is
// unit-tested without a kernel; the agent re-plans when the model changes and when a periodic scan
// of the cgroup tree finds a different set of workload cgroups.
#ifndef SOCKMESH_USERSPACE_AGENT_IDENTITY_SYNC_H_
#define SOCKMESH_USERSPACE_AGENT_IDENTITY_SYNC_H_

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "control_plane/model/service_model.h"
#include "userspace/agent/workload_cgroup.h"
#include "userspace/bpf/abi.h"
#include "userspace/bpf/map_interface.h"

namespace sockmesh::agent {

struct IdentityMaps {
  bpf::MapInterface<sm_ip_identity_key, sm_identity>* ips = nullptr;
  bpf::MapInterface<uint64_t, sm_identity>* cgroups = nullptr;
};

struct IdentityPlan {
  std::map<model::IpAddress, sm_identity> ips;
  std::map<uint64_t, sm_identity> cgroups;
  // One line per address claimed by two workloads of different identities (possible for a moment
  // in Kubernetes while a Pod's IP is reused); the first workload in (namespace, name) order wins.
  std::vector<std::string> conflicts;
};

// What the maps should hold. A workload is local (SM_IDENTITY_F_LOCAL) when its node_name is
// `node_name` (non-empty) or when it has a cgroup among `local_cgroups`. A cgroup whose
// namespace/name is not a workload in the model maps to nothing (it is not in the mesh's model).
IdentityPlan PlanIdentities(const model::WorkloadState& workloads, std::string_view node_name,
                            const std::vector<WorkloadCgroup>& local_cgroups);

struct IdentitySyncReport {
  uint64_t written = 0;
  uint64_t deleted = 0;
  std::vector<std::string> errors;  // one readable line per failed write or delete
  std::string Summary() const;
};

class IdentitySync {
 public:
  // Reads what the maps hold (a previous agent's work), so the first Apply() writes only
  // differences and deletes entries the model no longer has.
  static absl::StatusOr<IdentitySync> Recover(IdentityMaps maps);

  IdentitySyncReport Apply(const IdentityPlan& plan);

  size_t ip_count() const { return ips_.size(); }
  size_t cgroup_count() const { return cgroups_.size(); }

 private:
  explicit IdentitySync(IdentityMaps maps) : maps_(maps) {}

  IdentityMaps maps_;
  std::map<model::IpAddress, sm_identity> ips_;  // as the kernel holds them
  std::map<uint64_t, sm_identity> cgroups_;
};

}  // namespace sockmesh::agent

#endif  // SOCKMESH_USERSPACE_AGENT_IDENTITY_SYNC_H_
