// SPDX-License-Identifier: Apache-2.0
// Where sockmesh-control's desired state comes from: a manifests directory (standalone mode) or
// the Kubernetes API. The server loop only asks a source to wait for its next change and publish
// it, so both modes share one path into VersionedState, the metrics and the logs.
#ifndef SOCKMESH_CONTROL_PLANE_SERVER_DESIRED_STATE_SOURCE_H_
#define SOCKMESH_CONTROL_PLANE_SERVER_DESIRED_STATE_SOURCE_H_

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "control_plane/server/control_metrics.h"
#include "control_plane/server/versioned_state.h"
#include "control_plane/sources/kubernetes/kubernetes_source.h"
#include "control_plane/sources/manifest_directory.h"

namespace sockmesh::cp {

class DesiredStateSource {
 public:
  virtual ~DesiredStateSource() = default;

  // Waits up to `timeout` for the source to change; on a change publishes the new state into
  // `state`, logs errors and counts them in `metrics`. Short timeouts keep a stop request prompt.
  virtual void WaitAndPublish(absl::Duration timeout, VersionedState& state,
                              ControlMetrics& metrics) = 0;
  // Whether the source's content has been published once (readiness): before that the current
  // version is the empty placeholder, not the source's state.
  virtual bool Synced() const = 0;
};

// A directory of manifests, reloaded on inotify events. The first call publishes the directory's
// content at once, so the first version agents see is not the empty placeholder.
class ManifestDirectorySource : public DesiredStateSource {
 public:
  // After every reload: how many files are in error (kept at their last good parse), and whether
  // the directory could not be read at all. The embedded control plane of standalone mode
  // reports these in the agent's manifest metrics.
  using ReloadObserver = std::function<void(size_t files_in_error, bool unreadable)>;

  static absl::StatusOr<std::unique_ptr<ManifestDirectorySource>> Create(
      const std::filesystem::path& dir, ReloadObserver on_reload = nullptr);
  void WaitAndPublish(absl::Duration timeout, VersionedState& state,
                      ControlMetrics& metrics) override;
  bool Synced() const override { return published_; }

 private:
  ManifestDirectorySource(std::filesystem::path dir, sources::ManifestWatcher watcher,
                          ReloadObserver on_reload);
  void Reload(VersionedState& state, ControlMetrics& metrics);

  sources::ManifestDirectory manifests_;
  ReloadObserver on_reload_;
  std::optional<sources::ManifestWatcher> watcher_;
  bool loaded_ = false;
  bool published_ = false;  // the directory was read once (files in error keep their last parse)
};

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

size_t BackendCount(const model::DesiredState& state);

}  // namespace sockmesh::cp

#endif  // SOCKMESH_CONTROL_PLANE_SERVER_DESIRED_STATE_SOURCE_H_
