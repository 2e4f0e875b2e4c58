// SPDX-License-Identifier: Apache-2.0
// Standalone mode's control plane: the same server code as sockmesh-control (a manifests
// directory source, VersionedState, ControlPlaneService) running inside the agent, reached over
// gRPC's in-process transport. The agent follows it with the same ControlPlaneClient it uses for a
// remote control plane, so standalone and client mode share one path from manifests to the maps:
// versions, ACK/NACK, last good state.
#ifndef SOCKMESH_USERSPACE_AGENT_EMBEDDED_CONTROL_PLANE_H_
#define SOCKMESH_USERSPACE_AGENT_EMBEDDED_CONTROL_PLANE_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "control_plane/server/control_metrics.h"
#include "control_plane/server/control_plane_service.h"
#include "control_plane/server/desired_state_source.h"
#include "control_plane/server/versioned_state.h"

namespace sockmesh::agent {

class EmbeddedControlPlane {
 public:
  // Reads `manifests_dir` once (so the first version agents see is its content, not an empty
  // placeholder that would withdraw every service after a restart), then follows it on a thread.
  static absl::StatusOr<std::unique_ptr<EmbeddedControlPlane>> Start(
      const std::string& manifests_dir, cp::ManifestDirectorySource::ReloadObserver on_reload);
  ~EmbeddedControlPlane();

  // A new channel to the in-process server.
  std::shared_ptr<grpc::Channel> Channel(const grpc::ChannelArguments& args);

 private:
  EmbeddedControlPlane() = default;

  std::unique_ptr<cp::ControlMetrics> metrics_;  // registry only: the agent serves its own
  std::unique_ptr<cp::ManifestDirectorySource> source_;
  cp::VersionedState state_;
  std::unique_ptr<cp::ControlPlaneService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::atomic<bool> stop_{false};
  std::thread follower_;
};

}  // namespace sockmesh::agent

#endif  // SOCKMESH_USERSPACE_AGENT_EMBEDDED_CONTROL_PLANE_H_
