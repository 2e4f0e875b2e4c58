// SPDX-License-Identifier: Apache-2.0
// The agent's Prometheus metrics (prometheus-cpp, text exposition on /metrics): its own health and
// the datapath's outcome counters, read from the kernel at scrape time.
#ifndef SOCKMESH_USERSPACE_METRICS_AGENT_METRICS_H_
#define SOCKMESH_USERSPACE_METRICS_AGENT_METRICS_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "userspace/metrics/kernel_metrics.h"
#include "userspace/metrics/metrics_server.h"
#include "userspace/metrics/policy_metrics.h"

namespace prometheus {
class Counter;
class Gauge;
class Registry;
}  // namespace prometheus

namespace sockmesh::metrics {

// Returns the SM_CNT_* counters summed over CPUs.
using CounterReader = std::function<absl::StatusOr<std::vector<uint64_t>>()>;

// Names of the datapath events, indexed by SM_CNT_*, as they appear in the `event` label.
const std::vector<std::string>& DatapathEventNames();

class AgentMetrics {
 public:
  // Serves /metrics (and, added through server(), the health checks) on `listen`
  // ("127.0.0.1:9464"; port 0 picks a free one). Empty = registry
  // only, no HTTP server (tests, or when the operator disabled it).
  static absl::StatusOr<std::unique_ptr<AgentMetrics>> Create(const std::string& listen,
                                                              CounterReader datapath_counters);
  ~AgentMetrics();

  // The port actually bound, 0 when not serving.
  int port() const;
  // The listener, to serve more endpoints (the health checks) on the metrics port; null when not
  // serving.
  MetricsServer* server() const;
  // The text exposition, as a scrape would see it.
  std::string Render() const;

  // Adds the kernel's connection and request metrics and the map fill ratios, read at scrape time.
  void AddKernelMetrics(ConnStatsReader conn_stats, MapFillReader map_fill);

  // Adds sockmesh_policy_decisions_total, read at scrape time.
  void AddPolicyMetrics(PolicyDecisionReader decisions);

  void SetServices(size_t n);
  void SetProgramsAttached(size_t n);
  void SetShortCircuitEnabled(bool enabled);
  void RecordSync(bool ok, uint64_t map_writes, uint64_t map_deletes, int failed_services);
  void SetManifestFilesInError(size_t n);
  void RecordManifestError();
  // Client mode (--control-plane): stream state and the answers to pushed versions.
  void SetControlPlaneConnected(bool connected);
  void RecordControlPlaneAnswer(uint64_t version, bool acked);

 private:
  AgentMetrics() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sockmesh::metrics

#endif  // SOCKMESH_USERSPACE_METRICS_AGENT_METRICS_H_
