// SPDX-License-Identifier: Apache-2.0
// The sockmesh.v1.ControlPlane gRPC service: one Stream per agent pushing versions of the desired
// state (see agent_session.h for the rules), and ListAgents for `sockmeshctl status`.
#ifndef SOCKMESH_CONTROL_PLANE_SERVER_CONTROL_PLANE_SERVICE_H_
#define SOCKMESH_CONTROL_PLANE_SERVER_CONTROL_PLANE_SERVICE_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>

#include "absl/synchronization/mutex.h"
#include "control_plane/server/agent_session.h"
#include "control_plane/server/control_metrics.h"
#include "control_plane/server/versioned_state.h"
#include "sockmesh/v1/control_plane.grpc.pb.h"

namespace sockmesh::cp {

class ControlPlaneService final : public v1::ControlPlane::Service {
 public:
  // Neither is owned; both must outlive the service. `metrics` may be null.
  // `max_concurrent_snapshots` bounds how many full snapshots are on their way at once, from the
  // write to the agent's answer: a snapshot of a large cluster is megabytes on the wire and ten
  // times that while an agent parses it, and a thousand agents reconnecting together (a control
  // plane restart) would otherwise all get theirs at once, on the server and on shared hosts.
  ControlPlaneService(const VersionedState* state, ControlMetrics* metrics,
                      int max_concurrent_snapshots = 16)
      : state_(state), metrics_(metrics), snapshot_slots_(max_concurrent_snapshots) {}

  grpc::Status Stream(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<v1::ServerMessage, v1::AgentMessage>* stream) override;
  grpc::Status ListAgents(grpc::ServerContext* context, const v1::ListAgentsRequest* request,
                          v1::ListAgentsResponse* response) override;
  // Every AuthorizationPolicy of the current version with its status conditions.
  grpc::Status ListPolicies(grpc::ServerContext* context, const v1::ListPoliciesRequest* request,
                            v1::ListPoliciesResponse* response) override;

  // Makes every open Stream return promptly (call before grpc::Server::Shutdown, whose deadline
  // would otherwise be spent waiting for streams that never end by themselves).
  void Shutdown();

 private:
  struct StreamState;

  void HandleAnswer(StreamState& s, const v1::AgentMessage& msg);
  // Waits for a free snapshot slot; false if the stream or the service ends first.
  bool AcquireSnapshotSlot(grpc::ServerContext* context);
  void ReleaseSnapshotSlot();

  const VersionedState* state_;
  ControlMetrics* metrics_;
  absl::Mutex mu_;
  std::map<uint64_t, std::shared_ptr<StreamState>> streams_ ABSL_GUARDED_BY(mu_);
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
  std::atomic<bool> stopping_{false};
  absl::Mutex snapshot_mu_;
  absl::CondVar snapshot_slot_freed_;  // a CondVar, not Await: see versioned_state.h
  int snapshot_slots_ ABSL_GUARDED_BY(snapshot_mu_);
};

}  // namespace sockmesh::cp

#endif  // SOCKMESH_CONTROL_PLANE_SERVER_CONTROL_PLANE_SERVICE_H_
