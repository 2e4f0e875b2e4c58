// SPDX-License-Identifier: Apache-2.0
#include "control_plane/sources/desired_state_builder.h"

#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace sockmesh::sources {
namespace {

using model::Backend;
using model::Frontend;
using model::IpAddress;

using ObjectKey = std::pair<std::string, std::string>;  // namespace, name

std::string Describe(absl::string_view kind, const std::string& ns, const std::string& name,
                     const std::string& source) {
  return absl::StrCat(kind, " ", ns, "/", name, " (", source, ")");
}

// The same object in two files is ambiguous: which one is meant cannot be guessed, and Kubernetes
// could never hold both.
template <typename Manifest>
absl::Status CheckUnique(absl::string_view kind, const std::vector<Manifest>& objects) {
  std::map<ObjectKey, const Manifest*> seen;
  for (const Manifest& m : objects) {
    auto [it, inserted] = seen.emplace(ObjectKey{m.namespace_name, m.name}, &m);
    if (!inserted) {
      return absl::InvalidArgumentError(absl::StrCat(kind, " ", m.namespace_name, "/", m.name,
                                                     " is defined twice: in ", it->second->source,
                                                     " and in ", m.source));
    }
  }
  return absl::OkStatus();
}

// The backend port for `port` in `slice`: the slice port of the same name and protocol, as
// Kubernetes resolves named and numeric target ports alike; failing that a numeric targetPort.
std::optional<uint16_t> ResolveBackendPort(const ServicePortManifest& port,
                                           const EndpointSliceManifest& slice) {
  for (const EndpointPortManifest& p : slice.ports) {
    if (p.name == port.name && p.protocol == port.protocol) return p.port;
  }
  if (port.target_port_number != 0) return port.target_port_number;
  return std::nullopt;
}

std::vector<Backend> BackendsFor(const ServicePortManifest& port, uint8_t family,
                                 const std::vector<const EndpointSliceManifest*>& slices) {
  // Keyed by (address, port), so the result comes out sorted and de-duplicated.
  std::map<std::pair<IpAddress, uint16_t>, uint32_t> weights;
  for (const EndpointSliceManifest* slice : slices) {
    if (slice->family != family) continue;
    std::optional<uint16_t> backend_port = ResolveBackendPort(port, *slice);
    if (!backend_port.has_value()) continue;
    for (const EndpointManifest& endpoint : slice->endpoints) {
      // An endpoint's addresses are interchangeable (Kubernetes API docs); kube-proxy uses the
      // first, and using all would give multi-address endpoints a larger share.
      if (!endpoint.ready || endpoint.addresses.empty()) continue;
      uint32_t& weight = weights[{endpoint.addresses.front(), *backend_port}];
      weight = std::max(weight, slice->weight);
    }
  }
  std::vector<Backend> backends;
  backends.reserve(weights.size());
  for (const auto& [key, weight] : weights) {
    backends.push_back(Backend{.address = key.first, .port = key.second, .weight = weight});
  }
  return backends;
}

}  // namespace

absl::StatusOr<model::DesiredState> BuildDesiredState(
    const std::vector<ServiceManifest>& services,
    const std::vector<EndpointSliceManifest>& slices) {
  if (absl::Status s = CheckUnique("Service", services); !s.ok()) return s;
  if (absl::Status s = CheckUnique("EndpointSlice", slices); !s.ok()) return s;

  std::map<ObjectKey, std::vector<const EndpointSliceManifest*>> slices_by_service;
  for (const EndpointSliceManifest& slice : slices) {
    slices_by_service[{slice.namespace_name, slice.service_name}].push_back(&slice);
  }

  model::DesiredState state;
  std::map<Frontend, const ServiceManifest*> owners;
  static const std::vector<const EndpointSliceManifest*> kNoSlices;
  for (const ServiceManifest& svc : services) {
    auto found = slices_by_service.find({svc.namespace_name, svc.name});
    const auto& svc_slices = found == slices_by_service.end() ? kNoSlices : found->second;
    for (const IpAddress& ip : svc.cluster_ips) {
      for (const ServicePortManifest& port : svc.ports) {
        const Frontend frontend{.vip = ip, .port = port.port, .protocol = port.protocol};
        auto [owner, inserted] = owners.emplace(frontend, &svc);
        if (!inserted) {
          const ServiceManifest& other = *owner->second;
          return absl::InvalidArgumentError(
              absl::StrCat("frontend ", frontend.ToString(), " is claimed by two Services: ",
                           Describe("Service", other.namespace_name, other.name, other.source),
                           " and ", Describe("Service", svc.namespace_name, svc.name, svc.source)));
        }
        model::ServiceEntry entry;
        entry.namespace_name = svc.namespace_name;
        entry.service_name = svc.name;
        entry.port_name = port.name;
        entry.frontend = frontend;
        entry.algorithm = svc.algorithm;
        entry.max_connections_per_backend = svc.max_connections_per_backend;
        entry.affinity = svc.affinity;
        entry.affinity_timeout_seconds = svc.affinity_timeout_seconds;
        entry.backends = BackendsFor(port, ip.family, svc_slices);
        state.emplace(frontend, std::move(entry));
      }
    }
  }
  return state;
}

}  // namespace sockmesh::sources
