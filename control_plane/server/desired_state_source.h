// SPDX-License-Identifier: Apache-2.0
// Where sockmesh-control's desired state comes from: a manifests directory (standalone mode) or
// the Kubernetes API (kubernetes_api_source.h). The server loop only asks a source to wait for its
// next change and publish it, so both modes share one path into VersionedState, the metrics and the
// logs.
#ifndef SOCKMESH_CONTROL_PLANE_SERVER_DESIRED_STATE_SOURCE_H_
#define SOCKMESH_CONTROL_PLANE_SERVER_DESIRED_STATE_SOURCE_H_

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "control_plane/server/control_metrics.h"
#include "control_plane/server/versioned_state.h"
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

// Publishes `next` as the new version when it differs from the current one, and logs it (and
// every policy whose status changed). Every source publishes through here.
void PublishDesiredState(model::DesiredState next, VersionedState& state, ControlMetrics& metrics);

size_t BackendCount(const model::DesiredState& state);

}  // namespace sockmesh::cp

#endif  // SOCKMESH_CONTROL_PLANE_SERVER_DESIRED_STATE_SOURCE_H_
