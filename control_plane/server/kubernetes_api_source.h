// SPDX-License-Identifier: Apache-2.0
// sockmesh-control's desired state from the Kubernetes API. Kept apart from the manifests source
// so that the agent, whose embedded control plane only reads manifests, does not load libcurl and
// its TLS stack (several MB of resident memory on every node).
#ifndef SOCKMESH_CONTROL_PLANE_SERVER_KUBERNETES_API_SOURCE_H_
#define SOCKMESH_CONTROL_PLANE_SERVER_KUBERNETES_API_SOURCE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "control_plane/server/control_metrics.h"
#include "control_plane/server/desired_state_source.h"
#include "control_plane/server/versioned_state.h"
#include "control_plane/sources/kubernetes/kubernetes_source.h"

namespace sockmesh::cp {

// The Kubernetes API (list+watch of Services, EndpointSlices, Pods and Namespaces). Nothing is
// published until every kind has been listed once (the cache's version 0), so agents never get
// Services without their backends.
class KubernetesApiSource : public DesiredStateSource {
 public:
  static absl::StatusOr<std::unique_ptr<KubernetesApiSource>> Start(
      sources::kubernetes::KubeApiConfig config);
  void WaitAndPublish(absl::Duration timeout, VersionedState& state,
                      ControlMetrics& metrics) override;
  // Every kind (Services, EndpointSlices, Pods, Namespaces) listed once and published.
  bool Synced() const override { return seen_ > 0; }

 private:
  explicit KubernetesApiSource(std::unique_ptr<sources::kubernetes::KubernetesSource> source)
      : source_(std::move(source)) {}

  std::unique_ptr<sources::kubernetes::KubernetesSource> source_;
  uint64_t seen_ = 0;
  std::vector<std::string> last_errors_;  // logged again only when they change
  std::map<sources::kubernetes::ObjectKind, uint64_t> counted_failures_;
};

}  // namespace sockmesh::cp

#endif  // SOCKMESH_CONTROL_PLANE_SERVER_KUBERNETES_API_SOURCE_H_
