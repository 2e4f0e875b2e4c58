// SPDX-License-Identifier: Apache-2.0
// The node agent in standalone mode: loads and attaches the datapath, then keeps the kernel maps
// equal to the manifests directory, reloading when a file changes and re-reading the kernel maps
// periodically to repair drift.
#ifndef SOCKMESH_USERSPACE_AGENT_AGENT_H_
#define SOCKMESH_USERSPACE_AGENT_AGENT_H_

#include <atomic>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "control_plane/sources/manifest_directory.h"
#include "userspace/agent/datapath.h"
#include "userspace/agent/map_sync.h"
#include "userspace/metrics/agent_metrics.h"

namespace sockmesh::agent {

struct AgentOptions {
  std::string manifests_dir;
  std::string cgroup;  // --cgroup as given: absolute, or relative to the cgroup2 mount
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
  // Watches the manifests until `stop` becomes true.
  absl::Status Run(const std::atomic<bool>& stop);

  const metrics::AgentMetrics& metrics() const { return *metrics_; }

 private:
  Agent(const AgentOptions& options) : options_(options), manifests_(options.manifests_dir) {}
  ServiceMaps service_maps();
  // Probes the short-circuit that Datapath::Start attached; detaches it when the probe fails.
  // Returns whether it stays enabled. Logs the outcome either way.
  bool StartShortCircuit();

  AgentOptions options_;
  std::unique_ptr<Datapath> datapath_;
  std::optional<MapSync> sync_;
  sources::ManifestDirectory manifests_;
  std::unique_ptr<metrics::AgentMetrics> metrics_;
  bool applied_once_ = false;
};

}  // namespace sockmesh::agent

#endif  // SOCKMESH_USERSPACE_AGENT_AGENT_H_
