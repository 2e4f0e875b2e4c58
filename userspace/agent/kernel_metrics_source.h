// SPDX-License-Identifier: Apache-2.0
// What the agent feeds the kernel metrics with at scrape time: sm_conn_stats_v1 with its keys
// named (source cgroup id -> workload, svc_id -> Service) and the fill of every pinned map.
#ifndef SOCKMESH_USERSPACE_AGENT_KERNEL_METRICS_SOURCE_H_
#define SOCKMESH_USERSPACE_AGENT_KERNEL_METRICS_SOURCE_H_

#include <map>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "control_plane/model/service_model.h"
#include "userspace/agent/workload_cgroup.h"
#include "userspace/bpf/conn_stats.h"
#include "userspace/metrics/kernel_metrics.h"

namespace sockmesh::agent {

struct ServiceName {
  std::string namespace_name;
  std::string name;
};

// Pure: labels each (cgroup, svc_id) entry. `frontends` is svc_id -> frontend as the kernel holds
// it (sm_svc_v1), `services` frontend -> Service, `workloads` the workload cgroups. Whatever is
// not found stays "unknown".
std::vector<metrics::LabelledConnStats> LabelConnStats(
    const std::vector<bpf::ConnStatsEntry>& entries,
    const std::map<uint32_t, model::Frontend>& frontends,
    const std::map<model::Frontend, ServiceName>& services,
    const std::vector<WorkloadCgroup>& workloads);

class Datapath;

// Thread-safe: the sync loop updates the service names, the metrics server reads.
class ConnStatsLabeler {
 public:
  ConnStatsLabeler(const Datapath* datapath, std::string mesh_cgroup)
      : datapath_(datapath), mesh_cgroup_(std::move(mesh_cgroup)) {}
  // After each applied state: which Service each frontend belongs to.
  void SetServices(const model::DesiredState& state);
  absl::StatusOr<std::vector<metrics::LabelledConnStats>> Read() const;

 private:
  const Datapath* datapath_;
  std::string mesh_cgroup_;
  mutable absl::Mutex mu_;
  std::map<model::Frontend, ServiceName> services_ ABSL_GUARDED_BY(mu_);
};

// Entries / max_entries of every pinned map of the instance that has a meaningful size (hash,
// LRU, per-CPU hash, sockhash; arrays are full by construction, socket storage has no maximum).
absl::StatusOr<std::vector<metrics::MapFill>> ReadMapFills(const std::string& maps_dir);

}  // namespace sockmesh::agent

#endif  // SOCKMESH_USERSPACE_AGENT_KERNEL_METRICS_SOURCE_H_
