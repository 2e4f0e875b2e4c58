// SPDX-License-Identifier: Apache-2.0
// The Kubernetes API as a source of desired state: list+watch of Services, EndpointSlices, Pods,
// Namespaces and AuthorizationPolicies (all namespaces) into one ObjectCache, each kind on its own
// thread; policy status conditions are written back (WritePolicyStatus).
//
// Usage (what the control-plane server is expected to do):
//   auto config = InClusterConfig();  // or ExplicitConfig(server, token_file, ca_file)
//   auto source = KubernetesSource::Start(*config, {});
//   uint64_t seen = 0;
//   for (;;) {
//     Snapshot s = (*source)->cache().WaitForChange(seen, absl::Seconds(30));
//     if (s.version == seen) continue;  // nothing new yet
//     seen = s.version;                 // publish s.state; report s.errors
//   }
#ifndef SOCKMESH_CONTROL_PLANE_SOURCES_KUBERNETES_KUBERNETES_SOURCE_H_
#define SOCKMESH_CONTROL_PLANE_SOURCES_KUBERNETES_KUBERNETES_SOURCE_H_

#include <map>
#include <memory>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "control_plane/sources/kubernetes/in_cluster_config.h"
#include "control_plane/sources/kubernetes/kube_client.h"
#include "control_plane/sources/kubernetes/list_watch.h"
#include "control_plane/sources/kubernetes/object_cache.h"
#include "control_plane/sources/kubernetes/policy_status_writer.h"

namespace sockmesh::sources::kubernetes {

struct KubernetesSourceOptions {
  KubeClient::Options client;
  ListWatchOptions list_watch;
};

class KubernetesSource {
 public:
  // Starts one list+watch thread per kind and returns at once; the cache's version stays 0 until
  // Services and EndpointSlices have been listed. Fails only on a bad configuration: an
  // unreachable API server is retried with backoff (see stats()).
  static absl::StatusOr<std::unique_ptr<KubernetesSource>> Start(KubeApiConfig config,
                                                                 KubernetesSourceOptions options);
  KubernetesSource(const KubernetesSource&) = delete;
  KubernetesSource& operator=(const KubernetesSource&) = delete;
  // Stops and joins the threads (within about a second).
  ~KubernetesSource();

  const ObjectCache& cache() const { return cache_; }
  // Per kind: resourceVersion, counters and the last error, for logs and metrics.
  std::map<ObjectKind, ListWatchStats> stats() const;

  // Writes the status conditions of the AuthorizationPolicies that changed (see
  // policy_status_writer.h); returns the failed writes. Call from one thread.
  std::vector<std::string> WritePolicyStatus(const std::vector<model::PolicyStatus>& statuses) {
    return status_writer_.Write(statuses);
  }

 private:
  explicit KubernetesSource(KubeClient client) : client_(std::move(client)) {}

  KubeClient client_;
  ObjectCache cache_;
  PolicyStatusWriter status_writer_{&client_};
  std::vector<std::unique_ptr<ListWatcher>> watchers_;
  absl::Notification stop_;
  std::vector<std::thread> threads_;  // last: joined before the members they use are destroyed
};

}  // namespace sockmesh::sources::kubernetes

#endif  // SOCKMESH_CONTROL_PLANE_SOURCES_KUBERNETES_KUBERNETES_SOURCE_H_
