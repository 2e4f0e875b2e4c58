// SPDX-License-Identifier: Apache-2.0
#include "control_plane/model/proto_conversion.h"

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "control_plane/model/delta_apply.h"
#include "control_plane/model/policy_conversion.h"
#include "control_plane/model/workload_conversion.h"

namespace sockmesh::model {
namespace {

constexpr uint32_t kMaxPort = 65535;
constexpr uint32_t kMaxWeight = 65535;

absl::Status Invalid(absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", what));
}

v1::LbAlgorithm ToProto(LbAlgorithm algorithm) {
  switch (algorithm) {
    case LbAlgorithm::kMaglev:
      return v1::LB_ALGORITHM_MAGLEV;
    case LbAlgorithm::kLeastConnections:
      return v1::LB_ALGORITHM_LEAST_CONNECTIONS;
    case LbAlgorithm::kRandom:
      break;
  }
  return v1::LB_ALGORITHM_RANDOM;
}

}  // namespace

v1::IpAddress ToProto(const IpAddress& ip) {
  v1::IpAddress out;
  size_t len = ip.is_v4() ? 4 : ip.is_v6() ? 16 : 0;
  out.set_bytes(std::string(reinterpret_cast<const char*>(ip.bytes.data()), len));
  return out;
}

v1::Frontend ToProto(const Frontend& frontend) {
  v1::Frontend out;
  *out.mutable_vip() = ToProto(frontend.vip);
  out.set_port(frontend.port);
  out.set_protocol(frontend.protocol == Protocol::kUdp ? v1::PROTOCOL_UDP : v1::PROTOCOL_TCP);
  return out;
}

v1::Service ToProto(const ServiceEntry& entry) {
  v1::Service out;
  out.set_namespace_(entry.namespace_name);
  out.set_name(entry.service_name);
  out.set_port_name(entry.port_name);
  *out.mutable_frontend() = ToProto(entry.frontend);
  out.set_algorithm(ToProto(entry.algorithm));
  out.set_max_connections_per_backend(entry.max_connections_per_backend);
  if (entry.outlier.enabled()) {
    v1::OutlierDetection* od = out.mutable_outlier_detection();
    od->set_consecutive_connect_failures(entry.outlier.consecutive_connect_failures);
    od->set_base_ejection_ms(entry.outlier.base_ejection_ms);
    od->set_max_ejection_percent(entry.outlier.max_ejection_percent);
  }
  out.set_traffic_policy(entry.traffic_policy);
  out.set_affinity(entry.affinity == SessionAffinity::kClientIP ? v1::SESSION_AFFINITY_CLIENT_IP
                                                                : v1::SESSION_AFFINITY_NONE);
  out.set_affinity_timeout_seconds(entry.affinity_timeout_seconds);
  for (const Backend& be : entry.backends) {
    v1::Backend* b = out.add_backends();
    *b->mutable_address() = ToProto(be.address);
    b->set_port(be.port);
    b->set_weight(be.weight);
    b->set_ready(true);
  }
  return out;
}

absl::StatusOr<IpAddress> FromProto(const v1::IpAddress& ip) {
  IpAddress out;
  const std::string& b = ip.bytes();
  if (b.size() == 4) {
    out.family = 4;
  } else if (b.size() == 16) {
    out.family = 6;
  } else {
    return Invalid("address", absl::StrCat(b.size(), " bytes; want 4 (IPv4) or 16 (IPv6)"));
  }
  std::copy(b.begin(), b.end(), out.bytes.begin());
  return out;
}

absl::StatusOr<Frontend> FromProto(const v1::Frontend& frontend) {
  Frontend out;
  absl::StatusOr<IpAddress> vip = FromProto(frontend.vip());
  if (!vip.ok()) return Invalid("frontend.vip", vip.status().message());
  out.vip = *vip;
  if (frontend.port() == 0 || frontend.port() > kMaxPort) {
    return Invalid("frontend.port", absl::StrCat(frontend.port(), " is not in 1..65535"));
  }
  out.port = static_cast<uint16_t>(frontend.port());
  switch (frontend.protocol()) {
    case v1::PROTOCOL_TCP:
      out.protocol = Protocol::kTcp;
      break;
    case v1::PROTOCOL_UDP:
      out.protocol = Protocol::kUdp;
      break;
    default:
      return Invalid("frontend.protocol", absl::StrCat("unknown value ", frontend.protocol()));
  }
  return out;
}

absl::StatusOr<ServiceEntry> FromProto(const v1::Service& service) {
  ServiceEntry out;
  out.namespace_name = service.namespace_();
  out.service_name = service.name();
  out.port_name = service.port_name();
  absl::StatusOr<Frontend> frontend = FromProto(service.frontend());
  if (!frontend.ok()) {
    return Invalid(absl::StrCat("service ", service.namespace_(), "/", service.name()),
                   frontend.status().message());
  }
  out.frontend = *frontend;
  std::string where = absl::StrCat("service ", service.namespace_(), "/", service.name(), " (",
                                   out.frontend.ToString(), ")");
  switch (service.algorithm()) {
    case v1::LB_ALGORITHM_RANDOM:
      out.algorithm = LbAlgorithm::kRandom;
      break;
    case v1::LB_ALGORITHM_MAGLEV:
      out.algorithm = LbAlgorithm::kMaglev;
      break;
    case v1::LB_ALGORITHM_LEAST_CONNECTIONS:
      out.algorithm = LbAlgorithm::kLeastConnections;
      break;
    default:
      return Invalid(where, absl::StrCat("unknown algorithm ", service.algorithm()));
  }
  switch (service.affinity()) {
    case v1::SESSION_AFFINITY_NONE:
      out.affinity = SessionAffinity::kNone;
      break;
    case v1::SESSION_AFFINITY_CLIENT_IP:
      out.affinity = SessionAffinity::kClientIP;
      break;
    default:
      return Invalid(where, absl::StrCat("unknown session affinity ", service.affinity()));
  }
  out.affinity_timeout_seconds = service.affinity_timeout_seconds();
  if (service.max_connections_per_backend() > kMaxConnectionsPerBackend) {
    return Invalid(
        where, absl::StrCat("max_connections_per_backend ", service.max_connections_per_backend(),
                            " is not in 0..", kMaxConnectionsPerBackend));
  }
  out.max_connections_per_backend = service.max_connections_per_backend();
  if (service.has_outlier_detection() &&
      service.outlier_detection().consecutive_connect_failures() != 0) {
    const v1::OutlierDetection& od = service.outlier_detection();
    if (od.consecutive_connect_failures() > kMaxConsecutiveConnectFailures ||
        od.base_ejection_ms() == 0 || od.base_ejection_ms() > kMaxBaseEjectionMs ||
        od.max_ejection_percent() > 100) {
      return Invalid(where, absl::StrCat("outlier_detection (consecutive_connect_failures ",
                                         od.consecutive_connect_failures(), ", base_ejection_ms ",
                                         od.base_ejection_ms(), ", max_ejection_percent ",
                                         od.max_ejection_percent(), ") is out of range"));
    }
    out.outlier =
        OutlierDetection{.consecutive_connect_failures = od.consecutive_connect_failures(),
                         .base_ejection_ms = od.base_ejection_ms(),
                         .max_ejection_percent = od.max_ejection_percent()};
  }
  out.traffic_policy = service.traffic_policy();
  for (int i = 0; i < service.backends_size(); ++i) {
    const v1::Backend& b = service.backends(i);
    if (!b.ready()) continue;
    std::string field = absl::StrCat(where, " backends[", i, "]");
    absl::StatusOr<IpAddress> address = FromProto(b.address());
    if (!address.ok()) return Invalid(field, address.status().message());
    if (b.port() == 0 || b.port() > kMaxPort) {
      return Invalid(field, absl::StrCat("port ", b.port(), " is not in 1..65535"));
    }
    if (b.weight() == 0 || b.weight() > kMaxWeight) {
      return Invalid(field, absl::StrCat("weight ", b.weight(), " is not in 1..65535"));
    }
    out.backends.push_back(Backend{
        .address = *address, .port = static_cast<uint16_t>(b.port()), .weight = b.weight()});
  }
  std::sort(out.backends.begin(), out.backends.end());
  return out;
}

v1::Snapshot MakeSnapshot(uint64_t version, const DesiredState& state) {
  v1::Snapshot out;
  out.set_version(version);
  for (const auto& [frontend, entry] : state) *out.add_services() = ToProto(entry);
  AddWorkloads(state.workloads, out);
  *out.mutable_policy() = ToProto(state.policy);
  return out;
}

absl::StatusOr<DesiredState> FromSnapshot(const v1::Snapshot& snapshot) {
  DesiredState out;
  for (const v1::Service& s : snapshot.services()) {
    absl::StatusOr<ServiceEntry> entry = FromProto(s);
    if (!entry.ok()) return entry.status();
    Frontend key = entry->frontend;
    if (!out.emplace(key, *std::move(entry)).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("snapshot ", snapshot.version(), ": frontend ", key.ToString(), " twice"));
    }
  }
  absl::StatusOr<WorkloadState> workloads = WorkloadsFromSnapshot(snapshot);
  if (!workloads.ok()) return workloads.status();
  out.workloads = *std::move(workloads);
  absl::StatusOr<CompiledPolicy> policy = FromProto(snapshot.policy());
  if (!policy.ok()) return policy.status();
  out.policy = *std::move(policy);
  return out;
}

v1::Delta MakeDelta(uint64_t base_version, const DesiredState& base, uint64_t version,
                    const DesiredState& target) {
  v1::Delta out;
  out.set_version(version);
  out.set_base_version(base_version);
  for (const auto& [frontend, entry] : target) {
    auto it = base.find(frontend);
    if (it == base.end() || !(it->second == entry)) *out.add_upserted_services() = ToProto(entry);
  }
  for (const auto& [frontend, entry] : base) {
    if (!target.contains(frontend)) *out.add_removed_frontends() = ToProto(frontend);
  }
  AddWorkloadDelta(base.workloads, target.workloads, out);
  AddPolicyDelta(base.policy, target.policy, out);
  return out;
}

absl::Status ApplyDelta(const v1::Delta& delta, DesiredState& state) {
  absl::StatusOr<DecodedDelta> decoded = DecodeDelta(delta, state);
  if (!decoded.ok()) return decoded.status();
  ApplyDecodedDelta(*std::move(decoded), state);
  return absl::OkStatus();
}

}  // namespace sockmesh::model
