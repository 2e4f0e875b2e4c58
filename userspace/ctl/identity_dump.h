// SPDX-License-Identifier: Apache-2.0
// `sockmeshctl identities`: what the node's kernel maps say about workload identities, with names.
// The numbers come from the pinned maps (the truth the datapath uses); principals and workload
// names from the agent's workloads file, and a cgroup's workload from the cgroup tree.
#ifndef SOCKMESH_USERSPACE_CTL_IDENTITY_DUMP_H_
#define SOCKMESH_USERSPACE_CTL_IDENTITY_DUMP_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "control_plane/model/workload_model.h"
#include "userspace/bpf/abi.h"
#include "userspace/bpf/map_interface.h"

namespace sockmesh::ctl {

// One kernel entry: an address or a cgroup id mapped to an identity.
struct IdentityEntryView {
  std::string map;  // "ip" or "cgroup"
  std::string key;  // the address, or the cgroup id
  uint32_t identity = 0;
  bool local = false;
  std::string principal;               // "" when the agent's file does not know the number
  std::vector<std::string> workloads;  // namespace/name of the workloads behind the entry
};

struct IdentityDump {
  std::string instance;
  std::vector<IdentityEntryView> entries;        // ip entries by address, then cgroups by id
  std::map<uint32_t, std::string> identities;    // number -> principal, from the agent's file
  std::optional<std::string> names_unavailable;  // why principals are missing, if they are
};

// `names` is the agent's last applied model (nullopt when unavailable); `cgroup_workloads` maps
// cgroup ids under the mesh cgroup to namespace/name.
IdentityDump BuildIdentityDump(std::string instance,
                               const std::vector<std::pair<sm_ip_identity_key, sm_identity>>& ips,
                               const std::vector<std::pair<uint64_t, sm_identity>>& cgroups,
                               const absl::StatusOr<model::WorkloadState>& names,
                               const std::map<uint64_t, std::string>& cgroup_workloads);

// Reads both maps, then BuildIdentityDump.
absl::StatusOr<IdentityDump> ReadIdentityDump(
    std::string instance, const bpf::MapInterface<sm_ip_identity_key, sm_identity>& ips,
    const bpf::MapInterface<uint64_t, sm_identity>& cgroups,
    const absl::StatusOr<model::WorkloadState>& names,
    const std::map<uint64_t, std::string>& cgroup_workloads);

// IDENTITY / PRINCIPAL / MAP / KEY / LOCAL / WORKLOADS table.
std::string FormatIdentitiesTable(const IdentityDump& dump);
// {"instance", "identities": [{"identity", "principal"}], "entries": [{"map", "key", "identity",
// "local", "principal", "workloads"}]}
std::string FormatIdentitiesJson(const IdentityDump& dump);

}  // namespace sockmesh::ctl

#endif  // SOCKMESH_USERSPACE_CTL_IDENTITY_DUMP_H_
