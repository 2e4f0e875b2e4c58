// SPDX-License-Identifier: Apache-2.0
#include "control_plane/server/control_metrics.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

namespace sockmesh::cp {

struct ControlMetrics::Impl {
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
  prometheus::Gauge* agents = nullptr;
  prometheus::Counter* snapshots = nullptr;
  prometheus::Counter* deltas = nullptr;
  prometheus::Counter* acks = nullptr;
  prometheus::Counter* nacks = nullptr;
  prometheus::Histogram* latency = nullptr;
  prometheus::Gauge* version = nullptr;
  prometheus::Gauge* services = nullptr;
  prometheus::Gauge* backends = nullptr;
  prometheus::Counter* source_errors = nullptr;
  std::unique_ptr<metrics::MetricsServer> server;  // last: stops before the registry goes
};

absl::StatusOr<std::unique_ptr<ControlMetrics>> ControlMetrics::Create(const std::string& listen) {
  std::unique_ptr<ControlMetrics> m(new ControlMetrics());
  m->impl_ = std::make_unique<Impl>();
  Impl& i = *m->impl_;
  auto& r = *i.registry;
  i.agents = &prometheus::BuildGauge()
                  .Name("sockmesh_control_agents_connected")
                  .Help("Agents with an open stream")
                  .Register(r)
                  .Add({});
  auto& pushes = prometheus::BuildCounter()
                     .Name("sockmesh_control_pushes_total")
                     .Help("Versions sent to agents, by message type")
                     .Register(r);
  i.snapshots = &pushes.Add({{"type", "snapshot"}});
  i.deltas = &pushes.Add({{"type", "delta"}});
  auto& answers = prometheus::BuildCounter()
                      .Name("sockmesh_control_answers_total")
                      .Help("Agents' answers to pushed versions")
                      .Register(r);
  i.acks = &answers.Add({{"answer", "ack"}});
  i.nacks = &prometheus::BuildCounter()
                 .Name("sockmesh_control_nacks_total")
                 .Help("Versions an agent refused to apply (it keeps its last good state)")
                 .Register(r)
                 .Add({});
  i.latency =
      &prometheus::BuildHistogram()
           .Name("sockmesh_control_push_latency_seconds")
           .Help(
               "Time from a version's creation (or the stream's start, if later) to the agent's "
               "ACK or NACK")
           .Register(r)
           .Add({},
                prometheus::Histogram::BucketBoundaries{0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5});
  i.version = &prometheus::BuildGauge()
                   .Name("sockmesh_control_version")
                   .Help("Current version of the desired state")
                   .Register(r)
                   .Add({});
  auto& objects = prometheus::BuildGauge()
                      .Name("sockmesh_control_objects")
                      .Help("Objects in the current desired state, by kind")
                      .Register(r);
  i.services = &objects.Add({{"kind", "service"}});
  i.backends = &objects.Add({{"kind", "backend"}});
  i.source_errors = &prometheus::BuildCounter()
                         .Name("sockmesh_control_source_errors_total")
                         .Help("Reloads of the source that reported errors")
                         .Register(r)
                         .Add({});
  if (!listen.empty()) {
    absl::StatusOr<std::unique_ptr<metrics::MetricsServer>> server =
        metrics::MetricsServer::Start(listen, "--metrics-addr");
    if (!server.ok()) return server.status();
    i.server = *std::move(server);
    i.server->AddCollectable(i.registry);
  }
  return m;
}

ControlMetrics::~ControlMetrics() = default;

int ControlMetrics::port() const { return impl_->server ? impl_->server->port() : 0; }

metrics::MetricsServer* ControlMetrics::server() const { return impl_->server.get(); }

std::string ControlMetrics::Render() const {
  return prometheus::TextSerializer().Serialize(impl_->registry->Collect());
}

void ControlMetrics::AgentConnected() { impl_->agents->Increment(); }
void ControlMetrics::AgentDisconnected() { impl_->agents->Decrement(); }
void ControlMetrics::RecordPush(bool snapshot) {
  (snapshot ? impl_->snapshots : impl_->deltas)->Increment();
}
void ControlMetrics::RecordAnswer(bool acked, absl::Duration latency) {
  (acked ? impl_->acks : impl_->nacks)->Increment();
  impl_->latency->Observe(absl::ToDoubleSeconds(latency));
}
void ControlMetrics::SetState(uint64_t version, size_t services, size_t backends) {
  impl_->version->Set(static_cast<double>(version));
  impl_->services->Set(static_cast<double>(services));
  impl_->backends->Set(static_cast<double>(backends));
}
void ControlMetrics::RecordSourceError() { impl_->source_errors->Increment(); }

}  // namespace sockmesh::cp
