// SPDX-License-Identifier: Apache-2.0
#include "userspace/metrics/agent_metrics.h"

#include <prometheus/collectable.h>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include "sockmesh/consts.h"
#include "userspace/log/log.h"

namespace sockmesh::metrics {
namespace {

// Reads the kernel counters at scrape time, so the agent does no periodic polling.
class DatapathCollector : public prometheus::Collectable {
 public:
  explicit DatapathCollector(CounterReader reader) : reader_(std::move(reader)) {}

  std::vector<prometheus::MetricFamily> Collect() const override {
    prometheus::MetricFamily family{
        .name = "sockmesh_datapath_events_total",
        .help = "Outcomes of the socket load-balancing hooks, counted in the kernel",
        .type = prometheus::MetricType::Counter,
        .metric = {}};
    absl::StatusOr<std::vector<uint64_t>> values = reader_();
    if (!values.ok()) {
      log::Warn("metrics", "cannot read datapath counters: ", values.status().message());
      return {};
    }
    const auto& names = DatapathEventNames();
    for (size_t i = 0; i < values->size() && i < names.size(); ++i) {
      if (names[i].empty()) continue;  // a number no counter uses (yet)
      prometheus::ClientMetric m;
      m.label.push_back({"event", names[i]});
      m.counter.value = static_cast<double>((*values)[i]);
      family.metric.push_back(std::move(m));
    }
    return {family};
  }

 private:
  CounterReader reader_;
};

}  // namespace

const std::vector<std::string>& DatapathEventNames() {
  static const std::vector<std::string> kNames = [] {
    std::vector<std::string> n(SM_CNT_MAX);
    n[SM_CNT_CONNECT_XLATE] = "connect_translated";
    n[SM_CNT_SENDMSG_XLATE] = "sendmsg_translated";
    n[SM_CNT_NO_BACKEND] = "refused_no_backend";
    n[SM_CNT_RECVMSG_REVNAT] = "recvmsg_reverse_translated";
    n[SM_CNT_PEERNAME_REVNAT] = "getpeername_reverse_translated";
    n[SM_CNT_AFFINITY_HIT] = "affinity_hit";
    n[SM_CNT_AFFINITY_STALE] = "affinity_stale";
    n[SM_CNT_REV_RETRY] = "backend_set_swapped_retry";
    n[SM_CNT_INCONSISTENT] = "inconsistent_maps_failed_open";
    n[SM_CNT_REVNAT_UPDATE_FAIL] = "revnat_map_update_failed";
    n[SM_CNT_AFFINITY_UPDATE_FAIL] = "affinity_map_update_failed";
    n[SM_CNT_SC_REDIRECT] = "short_circuit_redirect";
    n[SM_CNT_SC_PASS] = "short_circuit_pass";
    n[SM_CNT_SC_INSERT_FAIL] = "short_circuit_insert_failed";
    n[SM_CNT_CONN_LIMIT] = "refused_connection_limit";
    n[SM_CNT_CONN_UNTRACKED] = "connection_untracked";
    n[SM_CNT_CONN_STATS_FULL] = "conn_stats_map_full";
    n[SM_CNT_POLICY_DENIED_CLIENT] = "policy_denied_at_client";
    n[SM_CNT_POLICY_DROPPED_DEST] = "policy_dropped_at_destination";
    n[SM_CNT_POLICY_DECISIONS_FULL] = "policy_decisions_map_full";
    n[SM_CNT_POLICY_EVENTS_LOST] = "policy_denial_events_lost";
    n[SM_CNT_FLOW_IDENTITY_FAIL] = "flow_identity_update_failed";
    n[SM_CNT_OUTLIER_EJECTED] = "outlier_ejected";
    n[SM_CNT_OUTLIER_AVOIDED] = "outlier_avoided";
    n[SM_CNT_OUTLIER_ALL_EJECTED] = "outlier_all_ejected_used_anyway";
    n[SM_CNT_OUTLIER_CAPPED] = "outlier_ejection_capped";
    n[SM_CNT_POLICY_DROPPED_UNPARSED] = "policy_dropped_unparsed";
    return n;
  }();
  return kNames;
}

struct AgentMetrics::Impl {
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
  std::shared_ptr<DatapathCollector> datapath;
  std::shared_ptr<KernelMetricsCollector> kernel;
  std::shared_ptr<PolicyMetricsCollector> policy;
  prometheus::Gauge* services = nullptr;
  prometheus::Gauge* programs = nullptr;
  prometheus::Gauge* manifest_files_in_error = nullptr;
  prometheus::Gauge* last_sync = nullptr;
  prometheus::Gauge* short_circuit = nullptr;
  prometheus::Counter* syncs_ok = nullptr;
  prometheus::Counter* syncs_failed = nullptr;
  prometheus::Counter* service_sync_errors = nullptr;
  prometheus::Counter* map_writes = nullptr;
  prometheus::Counter* map_deletes = nullptr;
  prometheus::Counter* manifest_errors = nullptr;
  prometheus::Gauge* cp_connected = nullptr;
  prometheus::Gauge* cp_version = nullptr;
  prometheus::Counter* cp_acks = nullptr;
  prometheus::Counter* cp_nacks = nullptr;
  prometheus::Counter* cp_disconnects = nullptr;
  std::unique_ptr<MetricsServer> server;  // last: stops before the collectors go
};

absl::StatusOr<std::unique_ptr<AgentMetrics>> AgentMetrics::Create(const std::string& listen,
                                                                   CounterReader counters) {
  std::unique_ptr<AgentMetrics> m(new AgentMetrics());
  m->impl_ = std::make_unique<Impl>();
  Impl& i = *m->impl_;
  prometheus::Registry& r = *i.registry;
  i.services = &prometheus::BuildGauge()
                    .Name("sockmesh_agent_services")
                    .Help("Frontends (VIP, port, protocol) programmed into the kernel")
                    .Register(r)
                    .Add({});
  i.programs = &prometheus::BuildGauge()
                    .Name("sockmesh_agent_programs_attached")
                    .Help("BPF programs attached to the mesh cgroup")
                    .Register(r)
                    .Add({});
  i.short_circuit = &prometheus::BuildGauge()
                         .Name("sockmesh_agent_short_circuit_enabled")
                         .Help(
                             "1 when same-node connections skip TCP/IP (sockops + sk_msg) after "
                             "the start-up probe passed, else 0")
                         .Register(r)
                         .Add({});
  i.manifest_files_in_error = &prometheus::BuildGauge()
                                   .Name("sockmesh_agent_manifest_files_in_error")
                                   .Help("Manifest files whose current content is rejected")
                                   .Register(r)
                                   .Add({});
  i.last_sync = &prometheus::BuildGauge()
                     .Name("sockmesh_agent_last_sync_timestamp_seconds")
                     .Help("Unix time of the last map synchronisation")
                     .Register(r)
                     .Add({});
  auto& syncs = prometheus::BuildCounter()
                    .Name("sockmesh_agent_syncs_total")
                    .Help("Map synchronisations by result")
                    .Register(r);
  i.syncs_ok = &syncs.Add({{"result", "ok"}});
  i.syncs_failed = &syncs.Add({{"result", "error"}});
  i.service_sync_errors = &prometheus::BuildCounter()
                               .Name("sockmesh_agent_service_sync_errors_total")
                               .Help("Services whose kernel update failed (old state kept)")
                               .Register(r)
                               .Add({});
  auto& ops = prometheus::BuildCounter()
                  .Name("sockmesh_agent_map_operations_total")
                  .Help("Kernel map entries written or deleted by synchronisation")
                  .Register(r);
  i.map_writes = &ops.Add({{"op", "write"}});
  i.map_deletes = &ops.Add({{"op", "delete"}});
  i.manifest_errors = &prometheus::BuildCounter()
                           .Name("sockmesh_agent_manifest_errors_total")
                           .Help("Manifest reloads that reported an error")
                           .Register(r)
                           .Add({});
  i.cp_connected = &prometheus::BuildGauge()
                        .Name("sockmesh_agent_control_plane_connected")
                        .Help("1 while the stream to sockmesh-control is up (client mode)")
                        .Register(r)
                        .Add({});
  i.cp_version = &prometheus::BuildGauge()
                      .Name("sockmesh_agent_control_plane_version")
                      .Help("Last control-plane version applied and ACKed (client mode)")
                      .Register(r)
                      .Add({});
  auto& answers = prometheus::BuildCounter()
                      .Name("sockmesh_agent_control_plane_versions_total")
                      .Help("Control-plane versions received, by answer (nack = not applied)")
                      .Register(r);
  i.cp_acks = &answers.Add({{"answer", "ack"}});
  i.cp_nacks = &answers.Add({{"answer", "nack"}});
  i.cp_disconnects = &prometheus::BuildCounter()
                          .Name("sockmesh_agent_control_plane_disconnects_total")
                          .Help("Streams to sockmesh-control that ended (client mode)")
                          .Register(r)
                          .Add({});
  if (counters) i.datapath = std::make_shared<DatapathCollector>(std::move(counters));
  if (!listen.empty()) {
    absl::StatusOr<std::unique_ptr<MetricsServer>> server =
        MetricsServer::Start(listen, "--metrics-addr");
    if (!server.ok()) return server.status();
    i.server = *std::move(server);
    i.server->AddCollectable(i.registry);
    if (i.datapath) i.server->AddCollectable(i.datapath);
  }
  return m;
}

AgentMetrics::~AgentMetrics() = default;

int AgentMetrics::port() const { return impl_->server ? impl_->server->port() : 0; }

MetricsServer* AgentMetrics::server() const { return impl_->server.get(); }

std::string AgentMetrics::Render() const {
  std::vector<prometheus::MetricFamily> families = impl_->registry->Collect();
  if (impl_->datapath) {
    for (auto& f : impl_->datapath->Collect()) families.push_back(std::move(f));
  }
  if (impl_->kernel) {
    for (auto& f : impl_->kernel->Collect()) families.push_back(std::move(f));
  }
  if (impl_->policy) {
    for (auto& f : impl_->policy->Collect()) families.push_back(std::move(f));
  }
  return prometheus::TextSerializer().Serialize(families);
}

void AgentMetrics::AddKernelMetrics(ConnStatsReader conn_stats, MapFillReader map_fill) {
  impl_->kernel =
      std::make_shared<KernelMetricsCollector>(std::move(conn_stats), std::move(map_fill));
  if (impl_->server) impl_->server->AddCollectable(impl_->kernel);
}

void AgentMetrics::AddPolicyMetrics(PolicyDecisionReader decisions) {
  impl_->policy = std::make_shared<PolicyMetricsCollector>(std::move(decisions));
  if (impl_->server) impl_->server->AddCollectable(impl_->policy);
}

void AgentMetrics::SetServices(size_t n) { impl_->services->Set(static_cast<double>(n)); }
void AgentMetrics::SetProgramsAttached(size_t n) { impl_->programs->Set(static_cast<double>(n)); }
void AgentMetrics::SetShortCircuitEnabled(bool enabled) {
  impl_->short_circuit->Set(enabled ? 1 : 0);
}
void AgentMetrics::SetManifestFilesInError(size_t n) {
  impl_->manifest_files_in_error->Set(static_cast<double>(n));
}
void AgentMetrics::RecordManifestError() { impl_->manifest_errors->Increment(); }

void AgentMetrics::RecordSync(bool ok, uint64_t writes, uint64_t deletes, int failed_services) {
  (ok ? impl_->syncs_ok : impl_->syncs_failed)->Increment();
  impl_->map_writes->Increment(static_cast<double>(writes));
  impl_->map_deletes->Increment(static_cast<double>(deletes));
  impl_->service_sync_errors->Increment(failed_services);
  impl_->last_sync->SetToCurrentTime();
}

void AgentMetrics::SetControlPlaneConnected(bool connected) {
  if (!connected && impl_->cp_connected->Value() > 0) impl_->cp_disconnects->Increment();
  impl_->cp_connected->Set(connected ? 1 : 0);
}

void AgentMetrics::RecordControlPlaneAnswer(uint64_t version, bool acked) {
  if (acked) {
    impl_->cp_acks->Increment();
    impl_->cp_version->Set(static_cast<double>(version));
  } else {
    impl_->cp_nacks->Increment();
  }
}

}  // namespace sockmesh::metrics
