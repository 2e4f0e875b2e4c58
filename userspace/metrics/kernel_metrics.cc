// SPDX-License-Identifier: Apache-2.0
#include "userspace/metrics/kernel_metrics.h"

#include <map>

#include "userspace/bpf/conn_stats.h"
#include "userspace/log/log.h"

namespace sockmesh::metrics {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

std::vector<ClientMetric::Label> IstioLabels(const ConnLabels& l) {
  std::string fqdn = l.destination_service_name == "unknown"
                         ? "unknown"
                         : l.destination_service_name + "." + l.destination_service_namespace +
                               ".svc.cluster.local";
  return {{"reporter", "source"},
          {"source_workload", l.source_workload},
          {"source_namespace", l.source_namespace},
          {"destination_service", fqdn},
          {"destination_service_name", l.destination_service_name},
          {"destination_service_namespace", l.destination_service_namespace},
          {"destination_workload", "unknown"}};
}

// Microsecond buckets to seconds. The last kernel bucket also holds everything above its range,
// so it is left to the +Inf bucket that the serializer adds.
ClientMetric::Histogram ToHistogram(const sm_hist& h) {
  ClientMetric::Histogram out;
  uint64_t cumulative = 0;
  for (int b = 0; b < SM_HIST_BUCKETS - 1; ++b) {
    cumulative += h.buckets[b];
    out.bucket.push_back({.cumulative_count = cumulative,
                          .upper_bound = static_cast<double>(bpf::HistBucketUpperUs(b)) / 1e6});
  }
  out.sample_count = bpf::HistCount(h);
  out.sample_sum = static_cast<double>(h.sum_us) / 1e6;
  return out;
}

struct FamilySpec {
  const char* name;
  const char* help;
  MetricType type;
};

}  // namespace

std::vector<MetricFamily> ConnMetricFamilies(const std::vector<LabelledConnStats>& stats) {
  std::map<ConnLabels, sm_conn_stats> merged;
  for (const LabelledConnStats& s : stats) bpf::AddConnStats(merged[s.labels], s.stats);

  using Value = std::function<void(const sm_conn_stats&, ClientMetric&)>;
  auto counter = [](__u64 sm_conn_stats::*field) -> Value {
    return [field](const sm_conn_stats& s, ClientMetric& m) {
      m.counter.value = static_cast<double>(s.*field);
    };
  };
  auto histogram = [](sm_hist sm_conn_stats::*field) -> Value {
    return
        [field](const sm_conn_stats& s, ClientMetric& m) { m.histogram = ToHistogram(s.*field); };
  };
  const std::vector<std::pair<FamilySpec, Value>> specs = {
      {{"sockmesh_tcp_connections_opened_total",
        "TCP connections to a service that sent their SYN, counted in the kernel",
        MetricType::Counter},
       counter(&sm_conn_stats::opened)},
      {{"sockmesh_tcp_connections_closed_total",
        "TCP connections to a service that were established and have closed", MetricType::Counter},
       counter(&sm_conn_stats::closed)},
      {{"sockmesh_tcp_connections_failed_total",
        "TCP connections to a service that closed before they were established (refused, timed "
        "out, aborted)",
        MetricType::Counter},
       counter(&sm_conn_stats::failed)},
      {{"sockmesh_tcp_connections_active", "Established TCP connections to a service, still open",
        MetricType::Gauge},
       [](const sm_conn_stats& s, ClientMetric& m) {
         m.gauge.value =
             s.established >= s.closed ? static_cast<double>(s.established - s.closed) : 0;
       }},
      {{"sockmesh_tcp_sent_bytes_total",
        "Bytes the service acknowledged, added when a connection closes (TCP sequence space: "
        "+1 each for SYN and FIN)",
        MetricType::Counter},
       counter(&sm_conn_stats::bytes_sent)},
      {{"sockmesh_tcp_received_bytes_total",
        "Bytes received from the service, added when a connection closes (+1 for the FIN)",
        MetricType::Counter},
       counter(&sm_conn_stats::bytes_received)},
      {{"sockmesh_tcp_retransmits_total",
        "TCP segments retransmitted, added when a connection "
        "closes",
        MetricType::Counter},
       counter(&sm_conn_stats::retransmits)},
      {{"sockmesh_tcp_connect_duration_seconds", "SYN sent to connection established",
        MetricType::Histogram},
       histogram(&sm_conn_stats::connect_us)},
      {{"sockmesh_tcp_srtt_seconds",
        "Smoothed round-trip time of each established connection, sampled when it closes",
        MetricType::Histogram},
       histogram(&sm_conn_stats::srtt_us)},
      {{"sockmesh_requests_total",
        "Request/response exchanges timed in the kernel (HTTP/1.1, gRPC unary, any protocol "
        "where the client speaks first)",
        MetricType::Counter},
       counter(&sm_conn_stats::requests)},
      {{"sockmesh_request_duration_seconds",
        "First request byte sent to first response byte received, measured in the kernel",
        MetricType::Histogram},
       histogram(&sm_conn_stats::request_us)},
  };
  std::vector<MetricFamily> families;
  for (const auto& [spec, value] : specs) {
    MetricFamily f{.name = spec.name, .help = spec.help, .type = spec.type, .metric = {}};
    for (const auto& [labels, s] : merged) {
      ClientMetric m;
      m.label = IstioLabels(labels);
      value(s, m);
      f.metric.push_back(std::move(m));
    }
    families.push_back(std::move(f));
  }
  return families;
}

std::vector<MetricFamily> MapFillFamilies(const std::vector<MapFill>& fills) {
  MetricFamily f{.name = "sockmesh_map_fill_ratio",
                 .help = "Entries in a pinned BPF map divided by its maximum size",
                 .type = MetricType::Gauge,
                 .metric = {}};
  for (const MapFill& fill : fills) {
    if (fill.max_entries == 0) continue;
    ClientMetric m;
    m.label.push_back({"map", fill.map});
    m.gauge.value = static_cast<double>(fill.entries) / static_cast<double>(fill.max_entries);
    f.metric.push_back(std::move(m));
  }
  return {f};
}

std::vector<MetricFamily> KernelMetricsCollector::Collect() const {
  std::vector<MetricFamily> out;
  if (conn_stats_) {
    absl::StatusOr<std::vector<LabelledConnStats>> stats = conn_stats_();
    if (stats.ok()) {
      out = ConnMetricFamilies(*stats);
    } else {
      log::Warn("metrics", "cannot read connection metrics: ", stats.status().message());
    }
  }
  if (map_fill_) {
    absl::StatusOr<std::vector<MapFill>> fills = map_fill_();
    if (fills.ok()) {
      for (MetricFamily& f : MapFillFamilies(*fills)) out.push_back(std::move(f));
    } else {
      log::Warn("metrics", "cannot read map sizes: ", fills.status().message());
    }
  }
  return out;
}

}  // namespace sockmesh::metrics
