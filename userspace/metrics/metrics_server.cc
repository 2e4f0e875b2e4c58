// SPDX-License-Identifier: Apache-2.0
#include "userspace/metrics/metrics_server.h"

#include <CivetServer.h>
#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include <exception>

#include "absl/strings/str_cat.h"

namespace sockmesh::metrics {
namespace {

// Two threads, as prometheus-cpp's Exposer uses by default: a scrape and a probe at once.
constexpr char kThreads[] = "2";

void Send(mg_connection* conn, const HttpResponse& response) {
  mg_printf(conn,
            "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
            "Cache-Control: no-store\r\n\r\n",
            response.status, mg_get_response_code_text(conn, response.status),
            response.content_type.c_str(), response.body.size());
  mg_write(conn, response.body.data(), response.body.size());
}

}  // namespace

// Routes every registered path to MetricsServer::Answer.
class MetricsServer::Dispatcher : public CivetHandler {
 public:
  explicit Dispatcher(const MetricsServer* server) : server_(server) {}
  bool handleGet(CivetServer*, mg_connection* conn) override {
    const mg_request_info* request = mg_get_request_info(conn);
    Send(conn, server_->Answer(request->local_uri != nullptr ? request->local_uri : ""));
    return true;
  }

 private:
  const MetricsServer* server_;
};

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(const std::string& listen,
                                                                    absl::string_view flag) {
  std::unique_ptr<MetricsServer> s(new MetricsServer());
  s->dispatcher_ = std::make_unique<Dispatcher>(s.get());
  try {  // civetweb reports a failed bind by throwing; it stops here
    s->server_ = std::make_unique<CivetServer>(
        std::vector<std::string>{"listening_ports", listen, "num_threads", kThreads});
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat(flag, ": cannot listen on \"", listen, "\": ", e.what()));
  }
  s->server_->addHandler("/metrics", s->dispatcher_.get());
  return s;
}

MetricsServer::~MetricsServer() {
  if (server_) server_->close();
}

void MetricsServer::AddCollectable(std::weak_ptr<prometheus::Collectable> collectable) {
  std::lock_guard<std::mutex> lock(mu_);
  collectables_.push_back(std::move(collectable));
}

void MetricsServer::Handle(const std::string& path, HttpHandler handler) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    handlers_[path] = std::move(handler);
  }
  server_->addHandler(path, dispatcher_.get());
}

int MetricsServer::port() const {
  std::vector<int> ports = server_->getListeningPorts();
  return ports.empty() ? 0 : ports.front();
}

HttpResponse MetricsServer::Answer(const std::string& path) const {
  HttpHandler handler;
  std::vector<std::weak_ptr<prometheus::Collectable>> collectables;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = handlers_.find(path);
    if (it != handlers_.end()) {
      handler = it->second;
    } else if (path == "/metrics") {
      collectables = collectables_;
    } else {
      // civetweb also routes /metrics/x and /healthz/x here (prefix match).
      return HttpResponse{.status = 404, .content_type = "text/plain", .body = "not found\n"};
    }
  }
  if (handler) return handler();
  std::vector<prometheus::MetricFamily> families;
  for (const auto& weak : collectables) {
    if (auto c = weak.lock()) {
      for (auto& f : c->Collect()) families.push_back(std::move(f));
    }
  }
  return HttpResponse{.status = 200,
                      .content_type = "text/plain; version=0.0.4; charset=utf-8",
                      .body = prometheus::TextSerializer().Serialize(families)};
}

void ServeHealth(MetricsServer& server, std::function<HealthVerdict()> check) {
  auto answer = [check](bool HealthVerdict::*condition) {
    return [check, condition] {
      HealthVerdict v = check();
      return HttpResponse{.status = v.*condition ? 200 : 503, .body = std::move(v.json)};
    };
  };
  server.Handle("/healthz", answer(&HealthVerdict::live));
  server.Handle("/readyz", answer(&HealthVerdict::ready));
}

}  // namespace sockmesh::metrics
