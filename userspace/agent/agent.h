// SPDX-License-Identifier: Apache-2.0
// The node agent: loads and attaches the datapath, then keeps the kernel maps equal to the desired
// state, re-reading the kernel maps periodically to repair drift. The desired state comes from a
// manifests directory (standalone mode, reloaded when a file changes) or from sockmesh-control
// (client mode: --control-plane, versions applied and ACKed or NACKed).
#ifndef SOCKMESH_USERSPACE_AGENT_AGENT_H_
#define SOCKMESH_USERSPACE_AGENT_AGENT_H_

#include <atomic>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "control_plane/sources/manifest_directory.h"
#include "userspace/agent/datapath.h"
#include "userspace/agent/kernel_metrics_source.h"
#include "userspace/agent/map_sync.h"
#include "userspace/metrics/agent_metrics.h"

namespace sockmesh::agent {

struct AgentOptions {
  std::string manifests_dir;  // standalone mode
  std::string control_plane;  // client mode: the control plane's gRPC address
  std::string node_name;      // client mode: how the control plane lists this agent
  std::string cgroup;         // --cgroup as given: absolute, or relative to the cgroup2 mount
  bool allow_root_cgroup = false;
  DatapathOptions datapath;  // cgroup_path is filled in from `cgroup`
  uint32_t table_size = 1021;
  std::string metrics_addr;
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

  // Reloads the manifests and applies the result. With `reread_kernel`, first rebuilds the view of
  // the kernel maps from the maps themselves, so entries changed behind the agent's back are fixed.
  void Sync(bool reread_kernel);
  // Standalone: watches the manifests until `stop` becomes true. Client mode: follows the
  // control plane until then.
  absl::Status Run(const std::atomic<bool>& stop);

  // Client mode: makes `state` the kernel's state. When any service cannot be written (a map is
  // full, a backend's family differs from its VIP's), the whole previous good state is written
  // back and the error returned, so a NACKed version leaves nothing of itself behind.
  absl::Status ApplyVersion(const model::DesiredState& state);

  const metrics::AgentMetrics& metrics() const { return *metrics_; }

 private:
  Agent(const AgentOptions& options) : options_(options), manifests_(options.manifests_dir) {}
  ServiceMaps service_maps();
  // Probes the short-circuit that Datapath::Start attached; detaches it when the probe fails.
  // Returns whether it stays enabled. Logs the outcome either way.
  bool StartShortCircuit();
  absl::Status RunClient(const std::atomic<bool>& stop);
  // Client mode: re-reads the kernel maps and rewrites the good state where they differ.
  void RepairDrift();

  AgentOptions options_;
  std::unique_ptr<Datapath> datapath_;
  std::optional<MapSync> sync_;
  sources::ManifestDirectory manifests_;
  std::unique_ptr<metrics::AgentMetrics> metrics_;
  std::unique_ptr<ConnStatsLabeler> conn_labels_;  // names the kernel's connection metrics
  bool applied_once_ = false;
  // Client mode: the control-plane thread applies versions while the main thread repairs drift.
  absl::Mutex client_mu_;
  model::DesiredState good_state_;  // guarded by client_mu_ in client mode
  bool have_good_state_ = false;    // guarded by client_mu_
};

}  // namespace sockmesh::agent

#endif  // SOCKMESH_USERSPACE_AGENT_AGENT_H_
