// SPDX-License-Identifier: Apache-2.0
// The list-then-watch loop of one Kubernetes resource (what client-go calls a reflector): list
// every object (paginated), then watch from the list's resourceVersion, feeding an ObjectCache.
//
// - BOOKMARK events only advance the resourceVersion, so a re-watch after a quiet period does
//   not start from a version the server has already compacted away.
// - An ERROR event with code 410 Gone (or an HTTP 410) means that version is too old: relist from
//   scratch. The cache keeps the previous objects until the new list has arrived, then swaps.
// - A watch the server ends (its timeoutSeconds) resumes at once from the last resourceVersion;
//   a dropped connection, a timeout or another error resumes the same way after a jittered
//   exponential backoff, so a restarting API server is not hit by every client at once. Events
//   are applied only when their whole line arrived, so a re-watch loses nothing.
#ifndef SOCKMESH_CONTROL_PLANE_SOURCES_KUBERNETES_LIST_WATCH_H_
#define SOCKMESH_CONTROL_PLANE_SOURCES_KUBERNETES_LIST_WATCH_H_

#include <cstdint>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "control_plane/sources/kubernetes/kube_client.h"
#include "control_plane/sources/kubernetes/object_cache.h"

namespace sockmesh::sources::kubernetes {

// Where a kind lives in the API.
struct ResourceType {
  ObjectKind kind;
  const char* api_version;  // "v1", "discovery.k8s.io/v1"
  const char* path;         // "/api/v1/services": all namespaces
};
ResourceType ResourceTypeOf(ObjectKind kind);

struct ListWatchOptions {
  // Backoff after a failure: doubles up to max_backoff; each sleep is drawn uniformly from
  // [d/2, d] so clients that failed together do not retry together.
  absl::Duration initial_backoff = absl::Milliseconds(500);
  absl::Duration max_backoff = absl::Seconds(30);
  // Each watch asks the server to end it after a random time in [min, 2*min], as client-go does,
  // so the watches of many agents do not all end at the same moment.
  absl::Duration min_watch_timeout = absl::Minutes(5);
  int page_size = 500;  // `limit` of each list request
};

struct ListWatchStats {
  std::string resource_version;  // the last one seen (list, event or bookmark)
  uint64_t lists = 0;            // completed lists
  uint64_t watches = 0;          // watch requests started
  uint64_t events = 0;           // ADDED, MODIFIED and DELETED events applied
  uint64_t bookmarks = 0;
  uint64_t gone = 0;      // 410 Gone answers, each followed by a relist
  uint64_t failures = 0;  // failed lists and watches (dropped, refused, timed out, errors)
  std::string last_error;
};

class ListWatcher {
 public:
  // `client` and `cache` must outlive the watcher.
  ListWatcher(const KubeClient* client, ObjectKind kind, ObjectCache* cache,
              ListWatchOptions options);
  ListWatcher(const ListWatcher&) = delete;
  ListWatcher& operator=(const ListWatcher&) = delete;

  // Lists and watches until `stop` is notified; returns within about a second of that.
  void Run(const absl::Notification& stop);

  ListWatchStats stats() const;
  ObjectKind kind() const { return type_.kind; }

 private:
  enum class WatchEnd {
    kResume,  // ended or dropped: watch again from the last resourceVersion
    kRelist,  // the resourceVersion is gone or the stream made no sense: list again
  };
  struct WatchResult {
    WatchEnd end = WatchEnd::kResume;
    bool failed = false;         // ended by an error rather than by the server's timeout
    bool made_progress = false;  // at least one event or bookmark arrived
  };

  absl::Status List(const absl::Notification& stop);
  WatchResult Watch(const absl::Notification& stop);
  // Handles one watch line; false to end the stream (the result says why).
  bool HandleLine(std::string_view line, WatchResult& result);
  void RecordFailure(const absl::Status& status);
  std::string resource_version() const;
  void set_resource_version(std::string rv);

  const KubeClient* client_;
  const ResourceType type_;
  ObjectCache* cache_;
  const ListWatchOptions options_;

  mutable absl::Mutex mu_;
  ListWatchStats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sockmesh::sources::kubernetes

#endif  // SOCKMESH_CONTROL_PLANE_SOURCES_KUBERNETES_LIST_WATCH_H_
