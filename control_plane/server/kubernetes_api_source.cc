// SPDX-License-Identifier: Apache-2.0
#include "control_plane/server/kubernetes_api_source.h"

#include <utility>

#include "userspace/log/log.h"

namespace sockmesh::cp {

namespace k8s = sockmesh::sources::kubernetes;

absl::StatusOr<std::unique_ptr<KubernetesApiSource>> KubernetesApiSource::Start(
    k8s::KubeApiConfig config) {
  absl::StatusOr<std::unique_ptr<k8s::KubernetesSource>> source =
      k8s::KubernetesSource::Start(std::move(config), {});
  if (!source.ok()) return source.status();
  return std::unique_ptr<KubernetesApiSource>(new KubernetesApiSource(*std::move(source)));
}

void KubernetesApiSource::WaitAndPublish(absl::Duration timeout, VersionedState& state,
                                         ControlMetrics& metrics) {
  k8s::Snapshot snapshot = source_->cache().WaitForChange(seen_, timeout);
  // Failed lists and watches are logged and retried by the source itself; count them too, or an
  // unreachable or refusing API server would look like an empty cluster on the dashboards.
  for (const auto& [kind, stats] : source_->stats()) {
    uint64_t& counted = counted_failures_[kind];
    for (; counted < stats.failures; ++counted) metrics.RecordSourceError();
  }
  if (snapshot.version == seen_) return;  // nothing new yet (or not listed yet: version 0)
  seen_ = snapshot.version;
  // The cache repeats its errors in every snapshot until they are fixed: log them when they
  // change, count every published snapshot that has any, as the manifests source does per reload.
  if (!snapshot.errors.empty()) metrics.RecordSourceError();
  if (snapshot.errors != last_errors_) {
    for (const std::string& error : snapshot.errors) log::Error("kubernetes", error);
    if (snapshot.errors.empty() && !last_errors_.empty()) {
      log::Info("kubernetes", "all objects valid again");
    }
    last_errors_ = snapshot.errors;
  }
  for (const std::string& error : source_->WritePolicyStatus(snapshot.state.policy_status)) {
    metrics.RecordSourceError();
    log::Warn("kubernetes", "policy status: ", error);
  }
  PublishDesiredState(std::move(snapshot.state), state, metrics);
}

}  // namespace sockmesh::cp
