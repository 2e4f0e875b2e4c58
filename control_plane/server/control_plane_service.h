// SPDX-License-Identifier: Apache-2.0
// The sockmesh.v1.ControlPlane gRPC service: one Stream per agent pushing versions of the desired
// state (see agent_session.h for the rules), and ListAgents for `sockmeshctl status`.
//
// Streams use gRPC's callback API, so an agent costs no thread: one fan-out thread waits for new
// versions and starts a write on every stream that is ready for it; answers (ACK/NACK) arrive as
// read completions on gRPC's own threads, which also start the next write. Stream is a raw
// (ByteBuffer) method so that every stream writes the same serialized bytes of a version's message
// (serialized_messages.h) instead of serializing it once per agent.
#ifndef SOCKMESH_CONTROL_PLANE_SERVER_CONTROL_PLANE_SERVICE_H_
#define SOCKMESH_CONTROL_PLANE_SERVER_CONTROL_PLANE_SERVICE_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "control_plane/server/control_metrics.h"
#include "control_plane/server/serialized_messages.h"
#include "control_plane/server/snapshot_slots.h"
#include "control_plane/server/versioned_state.h"
#include "sockmesh/v1/control_plane.grpc.pb.h"

namespace sockmesh::cp {

using ControlPlaneCallbackBase = v1::ControlPlane::WithRawCallbackMethod_Stream<
    v1::ControlPlane::WithCallbackMethod_ListAgents<v1::ControlPlane::Service>>;

class ControlPlaneService final : public ControlPlaneCallbackBase {
 public:
  // Neither is owned; both must outlive the service. `metrics` may be null.
  // `max_concurrent_snapshots` bounds how many full snapshots are on their way at once, from the
  // write to the agent's answer: a snapshot of a large cluster is megabytes on the wire and ten
  // times that while an agent parses it, and a thousand agents reconnecting together (a control
  // plane restart) would otherwise all get theirs at once, on the server and on shared hosts.
  ControlPlaneService(const VersionedState* state, ControlMetrics* metrics,
                      int max_concurrent_snapshots = 16);
  // Stops the fan-out thread. The gRPC server must have been shut down first (its streams end
  // before its Shutdown returns).
  ~ControlPlaneService() override;

  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* Stream(
      grpc::CallbackServerContext* context) override;
  grpc::ServerUnaryReactor* ListAgents(grpc::CallbackServerContext* context,
                                       const v1::ListAgentsRequest* request,
                                       v1::ListAgentsResponse* response) override;
  // Every AuthorizationPolicy of the current version with its status conditions. A plain (sync)
  // method: it only reads the current version.
  grpc::Status ListPolicies(grpc::ServerContext* context, const v1::ListPoliciesRequest* request,
                            v1::ListPoliciesResponse* response) override;

  // What ListAgents answers: the current version and every agent with an open stream.
  v1::ListAgentsResponse Agents();

  // Ends every open stream now, and refuses new ones (call before grpc::Server::Shutdown, whose
  // deadline would otherwise be spent waiting for streams that never end by themselves).
  void Shutdown();

 private:
  class AgentStream;

  // The stream's id, or 0 when shutting down.
  uint64_t Register(const std::shared_ptr<AgentStream>& stream);
  void Unregister(uint64_t id);
  std::vector<std::shared_ptr<AgentStream>> OpenStreams();
  // Offers every new version to every stream.
  void FanOut();
  // Gives a snapshot slot back, or hands it to the next stream waiting for one.
  void ReleaseSnapshotSlot();

  const VersionedState* state_;
  ControlMetrics* metrics_;
  SerializedMessages serialized_;
  SnapshotSlots<AgentStream> snapshot_slots_;
  absl::Mutex mu_;
  std::map<uint64_t, std::shared_ptr<AgentStream>> streams_ ABSL_GUARDED_BY(mu_);
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
  std::atomic<bool> stopping_{false};
  std::thread fan_out_;
};

}  // namespace sockmesh::cp

#endif  // SOCKMESH_CONTROL_PLANE_SERVER_CONTROL_PLANE_SERVICE_H_
