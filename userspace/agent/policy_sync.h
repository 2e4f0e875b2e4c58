// SPDX-License-Identifier: Apache-2.0
// Makes the kernel enforce a CompiledPolicy (control_plane.proto): its rows in sm_policy_rows_v1,
// the addresses of every selected workload in sm_ip_policy_endpoint_v1, and the cgroups of the
// local ones (<mesh cgroup>/<namespace>/<name>, as identity_sync finds them) in
// sm_cgroup_policy_endpoint_v1.
//
// A new policy never opens a window in which an allowed connection is refused: its rows are
// written under fresh kernel set ids first, then the endpoints switch to them (one map update per
// endpoint), and only then are the previous rows deleted, like the backend-set revision swap of
// map_sync. An invalid policy, or one that does not fit, is refused with an error naming the field
// and value, and the previous policy stays in force untouched.
#ifndef SOCKMESH_USERSPACE_AGENT_POLICY_SYNC_H_
#define SOCKMESH_USERSPACE_AGENT_POLICY_SYNC_H_

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "control_plane/model/ip_address.h"
#include "sockmesh/v1/control_plane.pb.h"
#include "userspace/agent/workload_cgroup.h"
#include "userspace/bpf/abi.h"
#include "userspace/bpf/map_interface.h"

namespace sockmesh::agent {

struct PolicyMaps {
  bpf::MapInterface<sm_policy_row_key, sm_policy_row>* rows = nullptr;
  bpf::MapInterface<sm_ip_identity_key, sm_policy_endpoint>* ips = nullptr;
  bpf::MapInterface<uint64_t, sm_policy_endpoint>* cgroups = nullptr;
  // sm_flow_gate_v1; optional (without it the kernel keeps recording every flow's source).
  bpf::MapInterface<uint32_t, uint32_t>* flow_gate = nullptr;
};

// Checks what the kernel cannot: ids >= 1 and unique, rows unique per set, ports and prefixes in
// range, every referenced policy and set present. InvalidArgument names the field, e.g.
// "policy.sets[0].rows[3].source_prefix_len: 33 is longer than the IPv4 address".
absl::Status ValidateCompiledPolicy(const v1::CompiledPolicy& policy);

struct PolicySyncReport {
  uint64_t rows_written = 0;
  uint64_t rows_deleted = 0;
  uint64_t endpoints_written = 0;
  uint64_t endpoints_deleted = 0;
  // Problems that did not stop the policy from applying (an old row that would not delete, an
  // address two endpoints claim).
  std::vector<std::string> warnings;
  std::string Summary() const;
};

class PolicySync {
 public:
  // Reads what the maps hold (a previous agent's work): the first Apply() replaces all of it.
  static absl::StatusOr<PolicySync> Recover(PolicyMaps maps);

  // Makes `policy` the enforced one, with `local_cgroups` naming the cgroups of local workloads.
  // On error the previous policy stays in force, and nothing of `policy` is left in the maps.
  absl::StatusOr<PolicySyncReport> Apply(const v1::CompiledPolicy& policy,
                                         const std::vector<WorkloadCgroup>& local_cgroups);
  // The same policy with another set of local workload cgroups: only endpoints change.
  absl::StatusOr<PolicySyncReport> UpdateCgroups(const std::vector<WorkloadCgroup>& local_cgroups);

  const v1::CompiledPolicy& policy() const { return policy_; }
  size_t row_count() const { return rows_.size(); }
  size_t ip_endpoint_count() const { return ips_.size(); }
  size_t cgroup_endpoint_count() const { return cgroups_.size(); }

 private:
  explicit PolicySync(PolicyMaps maps) : maps_(maps) {}

  // What the endpoint maps should hold for `policy` under the kernel set ids `kernel_set_of`.
  struct EndpointPlan {
    std::map<model::IpAddress, sm_policy_endpoint> ips;
    std::map<uint64_t, sm_policy_endpoint> cgroups;
  };
  EndpointPlan PlanEndpoints(const v1::CompiledPolicy& policy,
                             const std::map<uint32_t, uint32_t>& kernel_set_of,
                             const std::vector<WorkloadCgroup>& local_cgroups,
                             PolicySyncReport& report) const;
  // Writes the rows of every set under a fresh kernel set id; on failure deletes what it wrote.
  absl::Status WriteRows(const v1::CompiledPolicy& policy,
                         std::map<uint32_t, uint32_t>& kernel_set_of,
                         std::set<sm_policy_row_key, bpf::AbiLess>& written,
                         PolicySyncReport& report);
  // Switches the endpoint maps to `plan`: writes first, then deletes. A failed write restores the
  // entries already switched.
  absl::Status SwitchEndpoints(const EndpointPlan& plan, PolicySyncReport& report);
  // Tells the egress check whether to record which local workload opens each flow.
  absl::Status SetFlowGate(bool record);
  uint32_t FreshSetId(const std::set<uint32_t>& taken);

  PolicyMaps maps_;
  v1::CompiledPolicy policy_;
  bool have_policy_ = false;
  std::map<uint32_t, uint32_t> kernel_set_of_;      // proto policy_set_id -> kernel set id
  std::set<sm_policy_row_key, bpf::AbiLess> rows_;  // as the kernel holds them
  std::map<model::IpAddress, sm_policy_endpoint> ips_;
  std::map<uint64_t, sm_policy_endpoint> cgroups_;
  uint32_t next_set_id_ = 1;
};

}  // namespace sockmesh::agent

#endif  // SOCKMESH_USERSPACE_AGENT_POLICY_SYNC_H_
