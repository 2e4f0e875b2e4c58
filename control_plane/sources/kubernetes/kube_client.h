// SPDX-License-Identifier: Apache-2.0
// A minimal Kubernetes API client over libcurl: HTTPS GET of a whole response (lists) and of a
// stream of newline-delimited JSON (watches), with the bearer token and the CA from
// KubeApiConfig. It knows nothing about resources; list_watch.h builds on it.
//
// Every call makes its own curl handle, so one client can serve several threads at once.
#ifndef SOCKMESH_CONTROL_PLANE_SOURCES_KUBERNETES_KUBE_CLIENT_H_
#define SOCKMESH_CONTROL_PLANE_SOURCES_KUBERNETES_KUBE_CLIENT_H_

#include <functional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "control_plane/sources/kubernetes/in_cluster_config.h"

namespace sockmesh::sources::kubernetes {

struct HttpResponse {
  long status = 0;   // HTTP status code
  std::string body;  // the whole body (for a watch: only when status is not 200)
};

class KubeClient {
 public:
  struct Options {
    absl::Duration connect_timeout = absl::Seconds(10);
    // Bound on a whole list request. Watches pass their own bound.
    absl::Duration request_timeout = absl::Seconds(60);
  };

  // Initializes libcurl once per process. InvalidArgument when `config` has no CA file.
  static absl::StatusOr<KubeClient> Create(KubeApiConfig config, Options options);
  static absl::StatusOr<KubeClient> Create(KubeApiConfig config) {
    return Create(std::move(config), Options());
  }

  // GET `path` (starting with '/', with its query) and return the status and body. Transport
  // problems are errors: Unavailable (connection refused or dropped, TLS verification failed),
  // DeadlineExceeded, Cancelled once `cancel` is notified; an HTTP error status is not.
  absl::StatusOr<HttpResponse> Get(std::string_view path,
                                   const absl::Notification* cancel = nullptr) const;

  // GET `path` and hand each complete line of a 200 response to `on_line` (without the '\n'); a
  // trailing partial line of a dropped stream is never delivered. `on_line` returns false to end
  // the stream early (then the result is OK). Returns the status (and, when not 200, the body)
  // once the server ends the response; Unavailable when the connection drops mid-stream,
  // DeadlineExceeded after `timeout`, Cancelled once `cancel` is notified (within about a second).
  absl::StatusOr<HttpResponse> Stream(std::string_view path, absl::Duration timeout,
                                      const std::function<bool(std::string_view line)>& on_line,
                                      const absl::Notification* cancel = nullptr) const;

  // PATCH `path` with a JSON merge patch (application/merge-patch+json), as status writers do.
  // Transport problems are errors as for Get; an HTTP error status is not.
  absl::StatusOr<HttpResponse> MergePatch(std::string_view path, const std::string& body) const;

  const KubeApiConfig& config() const { return config_; }

  // Percent-encodes `value` for a URL query (resourceVersion and continue tokens are opaque).
  static std::string QueryEscape(std::string_view value);

 private:
  KubeClient(KubeApiConfig config, Options options)
      : config_(std::move(config)), options_(options) {}

  // A request without body (GET) or with one (`patch_body` set: PATCH).
  absl::StatusOr<HttpResponse> Send(std::string_view path, absl::Duration timeout,
                                    const std::function<bool(std::string_view line)>& on_line,
                                    const absl::Notification* cancel,
                                    const std::string* patch_body) const;

  KubeApiConfig config_;
  Options options_;
};

}  // namespace sockmesh::sources::kubernetes

#endif  // SOCKMESH_CONTROL_PLANE_SOURCES_KUBERNETES_KUBE_CLIENT_H_
