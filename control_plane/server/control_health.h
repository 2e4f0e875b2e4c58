// SPDX-License-Identifier: Apache-2.0
// sockmesh-control's health, served on its metrics listener:
//   GET /healthz (liveness): the main loop, which waits on the source and publishes its changes,
//     has run recently.
//   GET /readyz (readiness): the source is synced (a manifests directory read, or every kind
//     listed from the Kubernetes API) and the gRPC API is serving. Before that, an agent would
//     get the empty placeholder version; a Service in front of several replicas, or a rollout,
//     should wait.
// Both answer 200 or 503 with one JSON document (source, version, agents, reasons).
#ifndef SOCKMESH_CONTROL_PLANE_SERVER_CONTROL_HEALTH_H_
#define SOCKMESH_CONTROL_PLANE_SERVER_CONTROL_HEALTH_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "userspace/metrics/heartbeat.h"
#include "userspace/metrics/metrics_server.h"

namespace sockmesh::cp {

// The main loop wakes at least every 250 ms; a minute without a beat is a hang.
inline constexpr absl::Duration kControlLoopStallLimit = absl::Seconds(60);

struct ControlHealthOptions {
  std::string source;  // what the source is, for the report ("manifests /dir", "Kubernetes API …")
  // The current version of the desired state (VersionedState::Current().version).
  std::function<uint64_t()> version;
  absl::Duration stall_limit = kControlLoopStallLimit;
  std::function<absl::Time()> now = [] { return absl::Now(); };
};

struct ControlHealthReport {
  bool live = false;
  bool ready = false;
  std::vector<std::string> not_ready;  // why not, one line each ("not live" first when so)
  std::string json;
};

class ControlHealth {
 public:
  explicit ControlHealth(ControlHealthOptions options);

  void Heartbeat();  // the main loop ran
  void SetSourceSynced(bool synced);
  void SetServing(const std::string& grpc_address);

  ControlHealthReport Check() const;
  // Serves /healthz and /readyz on `server`; this object must outlive it.
  void ServeOn(metrics::MetricsServer& server) const;

 private:
  const ControlHealthOptions options_;
  metrics::Heartbeat main_loop_;
  mutable absl::Mutex mu_;
  bool source_synced_ ABSL_GUARDED_BY(mu_) = false;
  std::string grpc_address_ ABSL_GUARDED_BY(mu_);  // empty until serving
};

}  // namespace sockmesh::cp

#endif  // SOCKMESH_CONTROL_PLANE_SERVER_CONTROL_HEALTH_H_
