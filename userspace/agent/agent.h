// SPDX-License-Identifier: Apache-2.0
// The node agent: loads and attaches the datapath, then keeps the kernel maps equal to the desired
// state, re-reading the kernel maps periodically to repair drift. The desired state comes as
// versions from a control plane, applied and ACKed or NACKed: sockmesh-control (client mode,
// --control-plane) or, in standalone mode, the same server embedded in the agent and serving a
// manifests directory (reloaded when a file changes).
#ifndef SOCKMESH_USERSPACE_AGENT_AGENT_H_
#define SOCKMESH_USERSPACE_AGENT_AGENT_H_

#include <atomic>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "userspace/agent/agent_health.h"
#include "userspace/agent/datapath.h"
#include "userspace/agent/identity_sync.h"
#include "userspace/agent/kernel_metrics_source.h"
#include "userspace/agent/map_sync.h"
#include "userspace/agent/policy_metrics_source.h"
#include "userspace/agent/policy_sync.h"
#include "userspace/agent/workload_status_file.h"
#include "userspace/metrics/agent_metrics.h"

namespace sockmesh::agent {

class EmbeddedControlPlane;

struct AgentOptions {
  std::string manifests_dir;  // standalone mode
  std::string control_plane;  // client mode: the control plane's gRPC address
  std::string node_name;      // client mode: how the control plane lists this agent
  std::string cgroup;         // --cgroup as given: absolute, or relative to the cgroup2 mount
  bool allow_root_cgroup = false;
  DatapathOptions datapath;  // cgroup_path is filled in from `cgroup`
  uint32_t table_size = 1021;
  std::string metrics_addr;
  // Where the agent leaves the workloads it applied for `sockmeshctl identities`.
  std::string run_dir = kDefaultRunDir;
  absl::Duration resync_interval = absl::Seconds(30);
  // How long the short-circuit start-up probe may take (tests shorten it to force a failure).
  absl::Duration short_circuit_probe_timeout = absl::Seconds(2);
  // --short-circuit=auto (true): keep the short-circuit only if the kernel also applies
  // back-pressure; =on (false): the operator accepts that risk, only data integrity is probed.
  bool short_circuit_require_back_pressure = true;
};

// Resolves --cgroup against the cgroup2 mount, refuses the root cgroup unless allowed, and
// creates the directory when missing.
absl::StatusOr<std::string> PrepareCgroup(const std::string& arg, bool allow_root);

class Agent {
 public:
  static absl::StatusOr<std::unique_ptr<Agent>> Start(const AgentOptions& options);

  // Follows the control plane until `stop` becomes true: the remote one (--control-plane) or, in
  // standalone mode, one embedded in this process serving the manifests directory.
  absl::Status Run(const std::atomic<bool>& stop);

  // Makes `state` (a version from the control plane) the kernel's state. When any service cannot be
  // written (a map is full, a backend's family differs from its VIP's), the whole previous good
  // state is written back and the error returned, so a NACKed version leaves nothing of itself
  // behind. The same holds for `policy` (the version's compiled authorization policy): an invalid
  // one, or one that does not fit, NACKs the version and the last good policy stays.
  absl::Status ApplyVersion(const model::DesiredState& state,
                            const v1::CompiledPolicy& policy = v1::CompiledPolicy());

  const metrics::AgentMetrics& metrics() const { return *metrics_; }
  const AgentHealth& health() const { return *health_; }

 private:
  Agent(const AgentOptions& options) : options_(options) {}
  ServiceMaps service_maps();
  // Probes the short-circuit that Datapath::Start attached; detaches it when the probe fails.
  // Returns whether it stays enabled. Logs the outcome either way.
  bool StartShortCircuit();
  // `embedded` (standalone mode) or null (the remote --control-plane).
  absl::Status RunClient(const std::atomic<bool>& stop, EmbeddedControlPlane* embedded);
  // Makes `policy` the enforced authorization policy (PolicySync); the previous one stays on error.
  absl::Status ApplyPolicy(const v1::CompiledPolicy& policy);
  // Re-reads the kernel maps and rewrites the good state where they differ.
  void RepairDrift();
  // Makes the identity maps match `workloads` (nullptr: the last model) and the workload cgroups
  // under the mesh cgroup now. Without a new model and with the same cgroups as last time it
  // writes nothing, so the periodic scan is cheap.
  void SyncIdentities(const model::WorkloadState* workloads, bool reread_kernel = false);
  void ScanCgroupsIfDue();

  AgentOptions options_;
  std::unique_ptr<Datapath> datapath_;
  std::optional<MapSync> sync_;
  // /healthz and /readyz; served by metrics_'s listener, so declared before it (destroyed after).
  std::unique_ptr<AgentHealth> health_;
  std::unique_ptr<metrics::AgentMetrics> metrics_;
  std::unique_ptr<ConnStatsLabeler> conn_labels_;         // names the kernel's connection metrics
  std::unique_ptr<PolicyDecisionLabeler> policy_labels_;  // names the policy decisions
  // The control-plane thread applies versions while the main thread repairs drift.
  absl::Mutex client_mu_;
  model::DesiredState good_state_;  // guarded by client_mu_
  bool have_good_state_ = false;    // guarded by client_mu_
  // Identity maps: written from the control-plane thread (new version) and the main thread (cgroup
  // scan, drift repair).
  absl::Mutex identity_mu_;
  std::optional<IdentitySync> identity_sync_;     // guarded by identity_mu_
  model::WorkloadState identity_model_;           // guarded by identity_mu_
  bool identity_model_known_ = false;             // guarded by identity_mu_
  std::vector<WorkloadCgroup> identity_cgroups_;  // guarded by identity_mu_
  // Policy endpoints follow the same workload cgroups as identities.
  std::optional<PolicySync> policy_sync_;  // guarded by identity_mu_
  // The applied policy's names, written next to the workloads for sockmeshctl monitor.
  v1::CompiledPolicy status_policy_;  // guarded by identity_mu_
  bool status_policy_dirty_ = false;  // guarded by identity_mu_
  absl::Time next_cgroup_scan_ = absl::InfinitePast();
};

}  // namespace sockmesh::agent

#endif  // SOCKMESH_USERSPACE_AGENT_AGENT_H_
