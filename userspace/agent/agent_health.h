// SPDX-License-Identifier: Apache-2.0
// The agent's health as its probes see it, served on the metrics listener:
//   GET /healthz (liveness): the agent's main loop has run recently (it wakes every 250 ms; a
//     stall means a deadlock or a hung kernel call, which a restart cures: the datapath is pinned
//     and the new process adopts it).
//   GET /readyz (readiness): every program of the load balancer is attached to the mesh cgroup
//     (asked of the kernel at each probe, so a detach behind the agent's back shows), a version
//     from the control plane was applied and ACKed, the newest version was not NACKed, and the
//     last map synchronisation (a version or a drift repair) did not fail.
// Both answer 200 or 503 with the same JSON document. The control-plane stream and the
// short-circuit are reported, not required: with the control plane away the agent keeps its last
// good version (restarting or unreadying every node would not bring it back), and the
// short-circuit is an optimisation the start-up probe may turn off.
#ifndef SOCKMESH_USERSPACE_AGENT_AGENT_HEALTH_H_
#define SOCKMESH_USERSPACE_AGENT_AGENT_HEALTH_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "userspace/metrics/heartbeat.h"
#include "userspace/metrics/metrics_server.h"

namespace sockmesh::agent {

// Longest time the main loop may go without a heartbeat before /healthz fails. Generous: one
// drift repair of a large model runs inside the loop.
inline constexpr absl::Duration kMainLoopStallLimit = absl::Seconds(60);

struct AgentHealthOptions {
  // Programs the load balancer attaches (every program of its object).
  size_t programs_expected = 0;
  // How many of them are attached to the mesh cgroup now, asked of the kernel.
  std::function<absl::StatusOr<size_t>()> programs_attached;
  // The control plane followed: its address, or "embedded" in standalone mode.
  std::string control_plane;
  absl::Duration stall_limit = kMainLoopStallLimit;
  std::function<absl::Time()> now = [] { return absl::Now(); };
};

// What one probe found.
struct AgentHealthReport {
  bool live = false;
  bool ready = false;
  std::vector<std::string> not_live;   // why not, one line each
  std::vector<std::string> not_ready;  // why not, one line each
  std::string json;                    // the document both endpoints answer with
};

class AgentHealth {
 public:
  explicit AgentHealth(AgentHealthOptions options);

  // The main loop ran (called every iteration).
  void Heartbeat();
  void SetShortCircuit(bool enabled);
  void SetControlPlaneConnected(bool connected);
  // The answer given to a version from the control plane (a NACK's detail is in the sync error
  // when the maps refused it, and in the log).
  void RecordVersion(uint64_t version, bool acked);
  // A map synchronisation (a version applied, or a drift repair) ended; `error` empty when it
  // succeeded.
  void RecordSync(const std::string& error);

  AgentHealthReport Check() const;
  // Serves both on `server`; this object must outlive it.
  void ServeOn(metrics::MetricsServer& server) const;

 private:
  const AgentHealthOptions options_;
  const absl::Time started_;
  metrics::Heartbeat main_loop_;
  mutable absl::Mutex mu_;
  bool short_circuit_ ABSL_GUARDED_BY(mu_) = false;
  bool connected_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t acked_version_ ABSL_GUARDED_BY(mu_) = 0;  // 0: none yet
  // The answer to the newest version was a NACK (versions restart with the control plane, so
  // order of arrival, not number, says which is newest).
  bool newest_nacked_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t nacked_version_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time last_sync_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  std::string last_sync_error_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sockmesh::agent

#endif  // SOCKMESH_USERSPACE_AGENT_AGENT_HEALTH_H_
