// SPDX-License-Identifier: Apache-2.0
// The sockmesh.v1.ControlPlane gRPC service: one Stream per agent pushing versions of the desired
// state (see agent_session.h for the rules), and ListAgents for `sockmeshctl status`.
#ifndef SOCKMESH_CONTROL_PLANE_SERVER_CONTROL_PLANE_SERVICE_H_
#define SOCKMESH_CONTROL_PLANE_SERVER_CONTROL_PLANE_SERVICE_H_

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
  ControlPlaneService(const VersionedState* state, ControlMetrics* metrics)
      : state_(state), metrics_(metrics) {}

  grpc::Status Stream(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<v1::ServerMessage, v1::AgentMessage>* stream) override;
  grpc::Status ListAgents(grpc::ServerContext* context, const v1::ListAgentsRequest* request,
                          v1::ListAgentsResponse* response) override;

  // Makes every open Stream return promptly (call before grpc::Server::Shutdown, whose deadline
  // would otherwise be spent waiting for streams that never end by themselves).
  void Shutdown();

 private:
  struct StreamState;

  void HandleAnswer(StreamState& s, const v1::AgentMessage& msg);

  const VersionedState* state_;
  ControlMetrics* metrics_;
  absl::Mutex mu_;
  std::map<uint64_t, std::shared_ptr<StreamState>> streams_ ABSL_GUARDED_BY(mu_);
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace sockmesh::cp

#endif  // SOCKMESH_CONTROL_PLANE_SERVER_CONTROL_PLANE_SERVICE_H_
