// SPDX-License-Identifier: Apache-2.0
#include "control_plane/sources/kubernetes/kubernetes_source.h"

#include <utility>

namespace sockmesh::sources::kubernetes {

absl::StatusOr<std::unique_ptr<KubernetesSource>> KubernetesSource::Start(
    KubeApiConfig config, KubernetesSourceOptions options) {
  absl::StatusOr<KubeClient> client = KubeClient::Create(std::move(config), options.client);
  if (!client.ok()) return client.status();
  std::unique_ptr<KubernetesSource> source(new KubernetesSource(*std::move(client)));
  for (ObjectKind kind : kAllKinds) {
    source->watchers_.push_back(
        std::make_unique<ListWatcher>(&source->client_, kind, &source->cache_, options.list_watch));
  }
  for (auto& watcher : source->watchers_) {
    source->threads_.emplace_back([w = watcher.get(), stop = &source->stop_] { w->Run(*stop); });
  }
  return source;
}

KubernetesSource::~KubernetesSource() {
  stop_.Notify();
  for (std::thread& t : threads_) t.join();
}

std::map<ObjectKind, ListWatchStats> KubernetesSource::stats() const {
  std::map<ObjectKind, ListWatchStats> out;
  for (const auto& watcher : watchers_) out[watcher->kind()] = watcher->stats();
  return out;
}

}  // namespace sockmesh::sources::kubernetes
