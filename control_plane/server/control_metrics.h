// SPDX-License-Identifier: Apache-2.0
// The control plane's Prometheus metrics (prometheus-cpp, text exposition on /metrics).
#ifndef SOCKMESH_CONTROL_PLANE_SERVER_CONTROL_METRICS_H_
#define SOCKMESH_CONTROL_PLANE_SERVER_CONTROL_METRICS_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "userspace/metrics/metrics_server.h"

namespace sockmesh::cp {

class ControlMetrics {
 public:
  // Serves /metrics on `listen` (port 0 picks a free one); empty = registry only.
  static absl::StatusOr<std::unique_ptr<ControlMetrics>> Create(const std::string& listen);
  ~ControlMetrics();

  int port() const;  // 0 when not serving
  // The listener, to serve the health checks on the metrics port; null when not serving.
  metrics::MetricsServer* server() const;
  std::string Render() const;

  void AgentConnected();
  void AgentDisconnected();
  void RecordPush(bool snapshot);
  // An agent answered a version; `latency` runs from the version's creation (or the stream's
  // start, if later) to the answer.
  void RecordAnswer(bool acked, absl::Duration latency);
  void SetState(uint64_t version, size_t services, size_t backends);
  void RecordSourceError();

 private:
  ControlMetrics() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sockmesh::cp

#endif  // SOCKMESH_CONTROL_PLANE_SERVER_CONTROL_METRICS_H_
