// SPDX-License-Identifier: Apache-2.0
// The HTTP listener of --metrics-addr: Prometheus text on /metrics, and JSON endpoints such as the
// health checks (/healthz, /readyz) on the same port, so a Pod declares one port for scrapes and
// probes.
//
// Built on civetweb's CivetServer directly rather than prometheus-cpp's Exposer (which wraps the
// same server): the Exposer keeps its CivetServer private and serves only collectables, always
// with status 200, and the CivetCallbacks it accepts carry no context to reach a handler of ours.
// A probe needs 503 when unhealthy, so the server is ours and /metrics is the same serialization
// the Exposer does (TextSerializer over the registered collectables).
#ifndef SOCKMESH_USERSPACE_METRICS_METRICS_SERVER_H_
#define SOCKMESH_USERSPACE_METRICS_METRICS_SERVER_H_

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

class CivetServer;

namespace prometheus {
class Collectable;
}  // namespace prometheus

namespace sockmesh::metrics {

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
};
// Answers a GET of one path. Runs on the server's threads: it must be thread-safe.
using HttpHandler = std::function<HttpResponse()>;

class MetricsServer {
 public:
  // Listens on `listen` ("ADDR:PORT"; port 0 picks a free one). `flag` names the option in errors.
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(const std::string& listen,
                                                              absl::string_view flag);
  // Stops the listener and waits for requests in flight, before any handler goes away.
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // Collected at every GET /metrics, in the order added. Held weakly: the owner keeps it alive.
  void AddCollectable(std::weak_ptr<prometheus::Collectable> collectable);
  // Serves GET `path` (exactly that path) with `handler`; replaces an earlier handler of it.
  void Handle(const std::string& path, HttpHandler handler);

  int port() const;

 private:
  class Dispatcher;
  MetricsServer() = default;
  HttpResponse Answer(const std::string& path) const;

  mutable std::mutex mu_;
  std::vector<std::weak_ptr<prometheus::Collectable>> collectables_;  // guarded by mu_
  std::map<std::string, HttpHandler> handlers_;                       // guarded by mu_
  std::unique_ptr<Dispatcher> dispatcher_;
  std::unique_ptr<CivetServer> server_;  // last: destroyed (stopped) first
};

// What a health check found. GET /healthz answers 200 when `live`, GET /readyz 200 when `ready`,
// otherwise 503 (what Kubernetes probes read); both with `json`, which says why.
struct HealthVerdict {
  bool live = false;
  bool ready = false;
  std::string json;
};
// Serves /healthz and /readyz on `server`, running `check` for every request; whatever `check`
// refers to must outlive the server.
void ServeHealth(MetricsServer& server, std::function<HealthVerdict()> check);

}  // namespace sockmesh::metrics

#endif  // SOCKMESH_USERSPACE_METRICS_METRICS_SERVER_H_
