// SPDX-License-Identifier: Apache-2.0
#include "control_plane/sources/manifest_parser.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <exception>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "control_plane/sources/manifest_fields.h"
#include "control_plane/sources/traffic_policy_parser.h"
#include "userspace/sys/errno_status.h"

namespace sockmesh::sources {
namespace {

using model::IpAddress;
using model::Protocol;

// Kubernetes allows at most 100 addresses per endpoint.
constexpr size_t kMaxAddressesPerEndpoint = 100;

// Field readers shared with the parsers of sockmesh's own kinds (manifest_fields.h).
using fields::Absent;
using fields::Child;
using fields::Describe;
using fields::ExpectList;
using fields::ExpectMap;
using fields::Field;
using fields::Index;
using fields::IsDnsLabel;
using fields::IsDnsSubdomain;
using fields::IsIanaServiceName;
using fields::IsList;
using fields::IsLowerAlnum;
using fields::IsMap;
using fields::IsScalar;
using fields::IsServiceName;
using fields::kDnsLabelRule;
using fields::Key;
using fields::kServiceNameRule;
using fields::kSubdomainRule;
using fields::Metadata;
using fields::OptBool;
using fields::OptInt;
using fields::OptProtocol;
using fields::OptString;
using fields::ParseDecimal;
using fields::ParseMetadata;
using fields::Quote;
using fields::Reporter;
using fields::ReqInt;
using fields::ReqIp;
using fields::ReqString;
using fields::StringMap;
using fields::ToAbsl;
using fields::Truncate;

// ---- Service --------------------------------------------------------------------------------

absl::StatusOr<model::LbAlgorithm> ParseLbAlgorithm(
    const Reporter& r, const std::map<std::string, std::string>& annotations) {
  auto it = annotations.find(std::string(kLbAlgorithmAnnotation));
  if (it == annotations.end() || it->second == "random") return model::LbAlgorithm::kRandom;
  if (it->second == "maglev") return model::LbAlgorithm::kMaglev;
  if (it->second == "least-connections") return model::LbAlgorithm::kLeastConnections;
  return r.InvalidText(Key("metadata.annotations", ToAbsl(kLbAlgorithmAnnotation)), it->second,
                       "must be random, maglev or least-connections");
}

absl::StatusOr<uint32_t> ParseMaxConnections(
    const Reporter& r, const std::map<std::string, std::string>& annotations) {
  auto it = annotations.find(std::string(kMaxConnectionsAnnotation));
  if (it == annotations.end()) return 0u;
  std::optional<uint64_t> value = ParseDecimal(it->second);
  if (!value.has_value() || *value > model::kMaxConnectionsPerBackend) {
    return r.InvalidText(Key("metadata.annotations", ToAbsl(kMaxConnectionsAnnotation)), it->second,
                         absl::StrCat("must be an integer 0-", model::kMaxConnectionsPerBackend,
                                      " (0 = unlimited)"));
  }
  return static_cast<uint32_t>(*value);
}

// spec.clusterIPs wins when set (its first entry must then equal spec.clusterIP), as in Kubernetes.
// Standalone mode has no IP allocator, so one of the two is required.
absl::StatusOr<std::vector<IpAddress>> ParseClusterIps(const Reporter& r, const YAML::Node& spec) {
  const YAML::Node single = Child(spec, "clusterIP");
  absl::StatusOr<std::optional<std::string>> single_text = OptString(r, single, "spec.clusterIP");
  if (!single_text.ok()) return single_text.status();
  const std::string cluster_ip = single_text->value_or("");

  const YAML::Node list = Child(spec, "clusterIPs");
  std::vector<std::pair<YAML::Node, std::string>> entries;  // node and its field path
  if (!Absent(list)) {
    if (absl::Status s = ExpectList(r, list, "spec.clusterIPs"); !s.ok()) return s;
    if (list.size() > 2) {
      return r.Invalid("spec.clusterIPs", list, "must hold at most two addresses, one per family");
    }
    for (size_t i = 0; i < list.size(); ++i) {
      entries.emplace_back(list[i], Index("spec.clusterIPs", i));
    }
  }
  if (entries.empty()) {
    if (cluster_ip.empty()) {
      return r.Missing("spec.clusterIP",
                       "standalone mode allocates no IPs: set an address, or \"None\" for a "
                       "headless Service");
    }
    entries.emplace_back(single, "spec.clusterIP");
  } else if (!cluster_ip.empty()) {
    const YAML::Node& first = entries[0].first;
    if (!IsScalar(first) || first.Scalar() != cluster_ip) {
      return r.Invalid(entries[0].second, first,
                       absl::StrCat("must equal spec.clusterIP ", Quote(cluster_ip)));
    }
  }

  std::vector<IpAddress> ips;
  for (size_t i = 0; i < entries.size(); ++i) {
    const auto& [node, path] = entries[i];
    if (IsScalar(node) && node.Scalar() == "None") {
      if (entries.size() > 1) {
        return r.Invalid(path, node,
                         "a headless Service must have \"None\" as its only cluster IP");
      }
      return ips;  // headless: nothing to balance
    }
    absl::StatusOr<IpAddress> ip = ReqIp(r, node, path);
    if (!ip.ok()) return ip.status();
    if (!ips.empty() && ips[0].family == ip->family) {
      return r.Invalid(path, node,
                       absl::StrCat("must be of the other IP family than ", entries[0].second));
    }
    ips.push_back(*ip);
  }
  return ips;
}

absl::Status ParseTargetPort(const Reporter& r, const YAML::Node& node, absl::string_view path,
                             ServicePortManifest& port) {
  if (Absent(node)) {
    port.target_port_number = port.port;
    return absl::OkStatus();
  }
  constexpr absl::string_view kRule = "must be an integer 1-65535 or a port name";
  if (!IsScalar(node)) return r.Invalid(path, node, kRule);
  const std::string& text = node.Scalar();
  // Digits mean a number even when quoted: Kubernetes would reject "8080" as a name (names need a
  // letter), so reading it as the number the user meant loses nothing.
  if (!text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
        return absl::ascii_isdigit(static_cast<unsigned char>(c));
      })) {
    std::optional<uint64_t> value = ParseDecimal(text);
    if (!value.has_value() || *value < 1 || *value > 65535) return r.Invalid(path, node, kRule);
    port.target_port_number = static_cast<uint16_t>(*value);
    return absl::OkStatus();
  }
  if (!IsIanaServiceName(text)) {
    return r.Invalid(path, node,
                     "must be an integer 1-65535 or a port name (at most 15 lowercase letters, "
                     "digits and '-', with at least one letter)");
  }
  port.target_port_name = text;
  return absl::OkStatus();
}

// The fields a Service port and an EndpointSlice port share: name, port and protocol. `port` is
// required in both: Kubernetes lets a slice port omit it ("all ports"), which a socket load
// balancer cannot dial.
template <typename PortManifest>
absl::Status ParseNamedPort(const Reporter& r, const YAML::Node& node, absl::string_view path,
                            PortManifest& port) {
  if (absl::Status s = ExpectMap(r, node, path); !s.ok()) return s;
  const std::string name_path = Field(path, "name");
  const YAML::Node name = Child(node, "name");
  absl::StatusOr<std::optional<std::string>> name_text = OptString(r, name, name_path);
  if (!name_text.ok()) return name_text.status();
  port.name = name_text->value_or("");
  if (!port.name.empty() && !IsDnsLabel(port.name))
    return r.Invalid(name_path, name, kDnsLabelRule);

  absl::StatusOr<uint32_t> number = ReqInt(r, Child(node, "port"), Field(path, "port"), 1, 65535);
  if (!number.ok()) return number.status();
  port.port = static_cast<uint16_t>(*number);

  absl::StatusOr<Protocol> protocol =
      OptProtocol(r, Child(node, "protocol"), Field(path, "protocol"));
  if (!protocol.ok()) return protocol.status();
  port.protocol = *protocol;
  return absl::OkStatus();
}

absl::StatusOr<ServicePortManifest> ParseServicePort(const Reporter& r, const YAML::Node& node,
                                                     absl::string_view path) {
  ServicePortManifest port;
  if (absl::Status s = ParseNamedPort(r, node, path, port); !s.ok()) return s;

  if (absl::Status s =
          ParseTargetPort(r, Child(node, "targetPort"), Field(path, "targetPort"), port);
      !s.ok()) {
    return s;
  }
  return port;
}

// Port names are how EndpointSlice ports are matched to Service ports, so they must be unique, and
// present whenever there is more than one port; (port, protocol) pairs must be unique too, or two
// entries would claim one frontend.
absl::Status CheckPortsDistinct(const Reporter& r, const std::vector<ServicePortManifest>& ports) {
  for (size_t i = 0; i < ports.size(); ++i) {
    const std::string path = Index("spec.ports", i);
    if (ports.size() > 1 && ports[i].name.empty()) {
      return r.Missing(Field(path, "name"), "every port must be named when a Service has several");
    }
    for (size_t j = 0; j < i; ++j) {
      if (ports[j].name == ports[i].name) {
        return r.InvalidText(Field(path, "name"), ports[i].name,
                             absl::StrCat("duplicate of ", Index("spec.ports", j), ".name"));
      }
      if (ports[j].port == ports[i].port && ports[j].protocol == ports[i].protocol) {
        return r.InvalidText(
            Field(path, "port"), absl::StrCat(ports[i].port),
            absl::StrCat("duplicate of ", Index("spec.ports", j), " (", ports[i].port, "/",
                         ToAbsl(ProtocolName(ports[i].protocol)), ")"));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status ParseSessionAffinity(const Reporter& r, const YAML::Node& spec, ServiceManifest& svc) {
  const YAML::Node affinity = Child(spec, "sessionAffinity");
  absl::StatusOr<std::optional<std::string>> text = OptString(r, affinity, "spec.sessionAffinity");
  if (!text.ok()) return text.status();
  const std::string value = text->value_or("None");
  if (value == "None") {
    svc.affinity = model::SessionAffinity::kNone;
  } else if (value == "ClientIP") {
    svc.affinity = model::SessionAffinity::kClientIP;
  } else {
    return r.Invalid("spec.sessionAffinity", affinity, "must be None or ClientIP");
  }

  const YAML::Node config = Child(spec, "sessionAffinityConfig");
  if (Absent(config)) return absl::OkStatus();
  if (absl::Status s = ExpectMap(r, config, "spec.sessionAffinityConfig"); !s.ok()) return s;
  const YAML::Node client_ip = Child(config, "clientIP");
  if (Absent(client_ip)) return absl::OkStatus();
  if (absl::Status s = ExpectMap(r, client_ip, "spec.sessionAffinityConfig.clientIP"); !s.ok()) {
    return s;
  }
  absl::StatusOr<std::optional<uint32_t>> timeout =
      OptInt(r, Child(client_ip, "timeoutSeconds"),
             "spec.sessionAffinityConfig.clientIP.timeoutSeconds", 1, kMaxAffinityTimeoutSeconds);
  if (!timeout.ok()) return timeout.status();
  svc.affinity_timeout_seconds = timeout->value_or(kDefaultAffinityTimeoutSeconds);
  return absl::OkStatus();
}

absl::StatusOr<ServiceManifest> ParseService(Reporter& r, const YAML::Node& object,
                                             absl::string_view file) {
  absl::StatusOr<Metadata> meta =
      ParseMetadata(r, object, "Service", IsServiceName, kServiceNameRule);
  if (!meta.ok()) return meta.status();
  ServiceManifest svc;
  svc.source = std::string(file);
  svc.namespace_name = meta->namespace_name;
  svc.name = meta->name;
  svc.annotations = meta->annotations;
  absl::StatusOr<model::LbAlgorithm> algorithm = ParseLbAlgorithm(r, svc.annotations);
  if (!algorithm.ok()) return algorithm.status();
  svc.algorithm = *algorithm;
  absl::StatusOr<uint32_t> max_connections = ParseMaxConnections(r, svc.annotations);
  if (!max_connections.ok()) return max_connections.status();
  svc.max_connections_per_backend = *max_connections;

  const YAML::Node spec = Child(object, "spec");
  if (Absent(spec)) return r.Missing("spec");
  if (absl::Status s = ExpectMap(r, spec, "spec"); !s.ok()) return s;

  const YAML::Node type = Child(spec, "type");
  absl::StatusOr<std::optional<std::string>> type_text = OptString(r, type, "spec.type");
  if (!type_text.ok()) return type_text.status();
  const std::string type_value = type_text->value_or("ClusterIP");
  // NodePort and LoadBalancer Services also have cluster IPs, which is all sockmesh serves; an
  // ExternalName Service is a DNS alias with no virtual IP, so it yields no frontends.
  const bool external_name = type_value == "ExternalName";
  if (!external_name && type_value != "ClusterIP" && type_value != "NodePort" &&
      type_value != "LoadBalancer") {
    return r.Invalid("spec.type", type,
                     "must be ClusterIP, NodePort, LoadBalancer or ExternalName");
  }
  if (!external_name) {
    absl::StatusOr<std::vector<IpAddress>> ips = ParseClusterIps(r, spec);
    if (!ips.ok()) return ips.status();
    svc.cluster_ips = *std::move(ips);
  }

  const YAML::Node ports = Child(spec, "ports");
  if (Absent(ports) || (IsList(ports) && ports.size() == 0)) {
    // Kubernetes allows a port-less Service only when it is headless or an alias.
    if (!svc.cluster_ips.empty()) return r.Missing("spec.ports");
  } else {
    if (absl::Status s = ExpectList(r, ports, "spec.ports"); !s.ok()) return s;
    for (size_t i = 0; i < ports.size(); ++i) {
      absl::StatusOr<ServicePortManifest> port =
          ParseServicePort(r, ports[i], Index("spec.ports", i));
      if (!port.ok()) return port.status();
      svc.ports.push_back(*std::move(port));
    }
    if (absl::Status s = CheckPortsDistinct(r, svc.ports); !s.ok()) return s;
  }

  if (absl::Status s = ParseSessionAffinity(r, spec, svc); !s.ok()) return s;
  return svc;
}

// ---- EndpointSlice --------------------------------------------------------------------------

absl::StatusOr<uint32_t> ParseWeight(const Reporter& r,
                                     const std::map<std::string, std::string>& annotations) {
  auto it = annotations.find(std::string(kWeightAnnotation));
  if (it == annotations.end()) return 1u;
  std::optional<uint64_t> value = ParseDecimal(it->second);
  if (!value.has_value() || *value < 1 || *value > kMaxWeight) {
    return r.InvalidText(Key("metadata.annotations", ToAbsl(kWeightAnnotation)), it->second,
                         absl::StrCat("must be an integer 1-", kMaxWeight));
  }
  return static_cast<uint32_t>(*value);
}

absl::StatusOr<uint8_t> ParseAddressType(const Reporter& r, const YAML::Node& object) {
  const YAML::Node node = Child(object, "addressType");
  absl::StatusOr<std::string> text = ReqString(r, node, "addressType");
  if (!text.ok()) return text.status();
  if (*text == "IPv4") return uint8_t{4};
  if (*text == "IPv6") return uint8_t{6};
  if (*text == "FQDN") {
    return r.Invalid("addressType", node, "FQDN is not supported: must be IPv4 or IPv6");
  }
  return r.Invalid("addressType", node, "must be IPv4 or IPv6");
}

absl::StatusOr<EndpointManifest> ParseEndpoint(const Reporter& r, const YAML::Node& node,
                                               absl::string_view path, uint8_t family) {
  if (absl::Status s = ExpectMap(r, node, path); !s.ok()) return s;
  EndpointManifest endpoint;
  const std::string addresses_path = Field(path, "addresses");
  const YAML::Node addresses = Child(node, "addresses");
  if (Absent(addresses)) return r.Missing(addresses_path);
  if (absl::Status s = ExpectList(r, addresses, addresses_path); !s.ok()) return s;
  if (addresses.size() == 0) return r.Missing(addresses_path, "an endpoint needs an address");
  if (addresses.size() > kMaxAddressesPerEndpoint) {
    return r.Error(addresses_path, absl::StrCat("too many addresses (", addresses.size(),
                                                "): at most ", kMaxAddressesPerEndpoint));
  }
  for (size_t i = 0; i < addresses.size(); ++i) {
    const std::string address_path = Index(addresses_path, i);
    absl::StatusOr<IpAddress> ip = ReqIp(r, addresses[i], address_path);
    if (!ip.ok()) return ip.status();
    if (ip->family != family) {
      return r.Invalid(
          address_path, addresses[i],
          absl::StrCat("must be an IPv", family, " address: addressType is IPv", family));
    }
    endpoint.addresses.push_back(*ip);
  }

  const std::string conditions_path = Field(path, "conditions");
  const YAML::Node conditions = Child(node, "conditions");
  if (!Absent(conditions)) {
    if (absl::Status s = ExpectMap(r, conditions, conditions_path); !s.ok()) return s;
    absl::StatusOr<bool> ready =
        OptBool(r, Child(conditions, "ready"), Field(conditions_path, "ready"), true);
    if (!ready.ok()) return ready.status();
    endpoint.ready = *ready;
  }
  return endpoint;
}

absl::StatusOr<EndpointPortManifest> ParseEndpointPort(const Reporter& r, const YAML::Node& node,
                                                       absl::string_view path) {
  EndpointPortManifest port;
  if (absl::Status s = ParseNamedPort(r, node, path, port); !s.ok()) return s;
  return port;
}

absl::StatusOr<EndpointSliceManifest> ParseEndpointSlice(Reporter& r, const YAML::Node& object,
                                                         absl::string_view file) {
  absl::StatusOr<Metadata> meta =
      ParseMetadata(r, object, "EndpointSlice", IsDnsSubdomain, kSubdomainRule);
  if (!meta.ok()) return meta.status();
  EndpointSliceManifest slice;
  slice.source = std::string(file);
  slice.namespace_name = meta->namespace_name;
  slice.name = meta->name;

  const std::string label_path = Key("metadata.labels", ToAbsl(kServiceNameLabel));
  auto label = meta->labels.find(std::string(kServiceNameLabel));
  if (label == meta->labels.end() || label->second.empty()) {
    return r.Missing(label_path, "it names the Service these endpoints belong to");
  }
  if (!IsServiceName(label->second))
    return r.InvalidText(label_path, label->second, kServiceNameRule);
  slice.service_name = label->second;

  absl::StatusOr<uint32_t> weight = ParseWeight(r, meta->annotations);
  if (!weight.ok()) return weight.status();
  slice.weight = *weight;

  absl::StatusOr<uint8_t> family = ParseAddressType(r, object);
  if (!family.ok()) return family.status();
  slice.family = *family;

  // Kubernetes requires `endpoints`, but an empty or absent list means the same: no backends yet.
  const YAML::Node endpoints = Child(object, "endpoints");
  if (!Absent(endpoints)) {
    if (absl::Status s = ExpectList(r, endpoints, "endpoints"); !s.ok()) return s;
    for (size_t i = 0; i < endpoints.size(); ++i) {
      absl::StatusOr<EndpointManifest> endpoint =
          ParseEndpoint(r, endpoints[i], Index("endpoints", i), slice.family);
      if (!endpoint.ok()) return endpoint.status();
      slice.endpoints.push_back(*std::move(endpoint));
    }
  }

  const YAML::Node ports = Child(object, "ports");
  if (!Absent(ports)) {
    if (absl::Status s = ExpectList(r, ports, "ports"); !s.ok()) return s;
    for (size_t i = 0; i < ports.size(); ++i) {
      absl::StatusOr<EndpointPortManifest> port = ParseEndpointPort(r, ports[i], Index("ports", i));
      if (!port.ok()) return port.status();
      for (size_t j = 0; j < slice.ports.size(); ++j) {
        if (slice.ports[j].name == port->name) {
          return r.InvalidText(Field(Index("ports", i), "name"), port->name,
                               absl::StrCat("duplicate of ", Index("ports", j), ".name"));
        }
      }
      slice.ports.push_back(*std::move(port));
    }
  }
  return slice;
}

// ---- Workloads: Pod, WorkloadEntry, Namespace ------------------------------------------------

// A workload's addresses: at most one per family, none unspecified, no duplicates. `entries` are
// the nodes with their field paths, in the order the manifest gives them.
absl::StatusOr<std::vector<IpAddress>> ParseWorkloadIps(
    const Reporter& r, const std::vector<std::pair<YAML::Node, std::string>>& entries) {
  std::vector<IpAddress> ips;
  for (const auto& [node, path] : entries) {
    absl::StatusOr<IpAddress> ip = ReqIp(r, node, path);
    if (!ip.ok()) return ip.status();
    for (const IpAddress& other : ips) {
      if (other.family == ip->family) {
        return r.Invalid(path, node, "must be of another IP family than the address before it");
      }
    }
    ips.push_back(*ip);
  }
  std::sort(ips.begin(), ips.end());
  return ips;
}

// A service account name, when set; Kubernetes requires a DNS subdomain.
absl::StatusOr<std::optional<std::string>> ParseServiceAccount(const Reporter& r,
                                                               const YAML::Node& node,
                                                               absl::string_view path) {
  absl::StatusOr<std::optional<std::string>> text = OptString(r, node, path);
  if (!text.ok()) return text.status();
  if (!text->has_value() || (*text)->empty()) return std::nullopt;
  if (!IsDnsSubdomain(**text)) return r.Invalid(path, node, kSubdomainRule);
  return text;
}

// status.podIPs (each {ip: ...}) wins over status.podIP, and its first entry must equal it, as
// Kubernetes validates. A Pod that ended (phase Succeeded or Failed) or shares the node's network
// has no address of its own: its IP belongs to another Pod next, or to the host.
absl::StatusOr<std::vector<IpAddress>> ParsePodIps(const Reporter& r, const YAML::Node& object,
                                                   bool host_network) {
  const YAML::Node status = Child(object, "status");
  if (Absent(status)) return std::vector<IpAddress>();
  if (absl::Status s = ExpectMap(r, status, "status"); !s.ok()) return s;
  absl::StatusOr<std::optional<std::string>> phase =
      OptString(r, Child(status, "phase"), "status.phase");
  if (!phase.ok()) return phase.status();
  const YAML::Node single = Child(status, "podIP");
  absl::StatusOr<std::optional<std::string>> single_text = OptString(r, single, "status.podIP");
  if (!single_text.ok()) return single_text.status();
  const std::string pod_ip = single_text->value_or("");

  std::vector<std::pair<YAML::Node, std::string>> entries;
  const YAML::Node list = Child(status, "podIPs");
  if (!Absent(list)) {
    if (absl::Status s = ExpectList(r, list, "status.podIPs"); !s.ok()) return s;
    if (list.size() > 2) {
      return r.Invalid("status.podIPs", list, "must hold at most two addresses, one per family");
    }
    for (size_t i = 0; i < list.size(); ++i) {
      const std::string path = Index("status.podIPs", i);
      if (absl::Status s = ExpectMap(r, list[i], path); !s.ok()) return s;
      entries.emplace_back(Child(list[i], "ip"), Field(path, "ip"));
    }
  }
  if (entries.empty()) {
    if (!pod_ip.empty()) entries.emplace_back(single, "status.podIP");
  } else if (!pod_ip.empty()) {
    const YAML::Node& first = entries[0].first;
    if (!IsScalar(first) || first.Scalar() != pod_ip) {
      return r.Invalid(entries[0].second, first,
                       absl::StrCat("must equal status.podIP ", Quote(pod_ip)));
    }
  }
  absl::StatusOr<std::vector<IpAddress>> ips = ParseWorkloadIps(r, entries);
  if (!ips.ok()) return ips.status();
  const std::string ended = phase->value_or("");
  if (host_network || ended == "Succeeded" || ended == "Failed") return std::vector<IpAddress>();
  return ips;
}

absl::StatusOr<PodManifest> ParsePod(Reporter& r, const YAML::Node& object,
                                     absl::string_view file) {
  absl::StatusOr<Metadata> meta = ParseMetadata(r, object, "Pod", IsDnsSubdomain, kSubdomainRule);
  if (!meta.ok()) return meta.status();
  PodManifest pod;
  pod.source = std::string(file);
  pod.namespace_name = meta->namespace_name;
  pod.name = meta->name;
  pod.labels = meta->labels;

  // Kubernetes always serves a spec; a hand-written Pod without one gets the defaults.
  const YAML::Node spec = Child(object, "spec");
  if (!Absent(spec)) {
    if (absl::Status s = ExpectMap(r, spec, "spec"); !s.ok()) return s;
  }
  // serviceAccountName, or the deprecated serviceAccount that older manifests still carry.
  absl::StatusOr<std::optional<std::string>> sa =
      ParseServiceAccount(r, Child(spec, "serviceAccountName"), "spec.serviceAccountName");
  if (!sa.ok()) return sa.status();
  if (!sa->has_value()) {
    sa = ParseServiceAccount(r, Child(spec, "serviceAccount"), "spec.serviceAccount");
    if (!sa.ok()) return sa.status();
  }
  pod.service_account = sa->value_or(std::string(model::kDefaultServiceAccount));

  const YAML::Node node_name = Child(spec, "nodeName");
  absl::StatusOr<std::optional<std::string>> node_text = OptString(r, node_name, "spec.nodeName");
  if (!node_text.ok()) return node_text.status();
  pod.node_name = node_text->value_or("");
  if (!pod.node_name.empty() && !IsDnsSubdomain(pod.node_name)) {
    return r.Invalid("spec.nodeName", node_name, kSubdomainRule);
  }
  absl::StatusOr<bool> host_network =
      OptBool(r, Child(spec, "hostNetwork"), "spec.hostNetwork", false);
  if (!host_network.ok()) return host_network.status();

  absl::StatusOr<std::vector<IpAddress>> ips = ParsePodIps(r, object, *host_network);
  if (!ips.ok()) return ips.status();
  pod.ips = *std::move(ips);
  return pod;
}

// Shaped like Istio's networking.istio.io WorkloadEntry: spec.address (sockmesh also takes
// spec.addresses, one per family), spec.labels, spec.serviceAccount. An entry without an address
// is a local standalone workload, known by its cgroup <mesh cgroup>/<namespace>/<name>.
absl::StatusOr<WorkloadEntryManifest> ParseWorkloadEntry(Reporter& r, const YAML::Node& object,
                                                         absl::string_view file) {
  absl::StatusOr<Metadata> meta =
      ParseMetadata(r, object, "WorkloadEntry", IsDnsLabel, kDnsLabelRule);
  if (!meta.ok()) return meta.status();
  WorkloadEntryManifest entry;
  entry.source = std::string(file);
  entry.namespace_name = meta->namespace_name;
  entry.name = meta->name;

  // No spec: a local workload with the default service account.
  const YAML::Node spec = Child(object, "spec");
  if (!Absent(spec)) {
    if (absl::Status s = ExpectMap(r, spec, "spec"); !s.ok()) return s;
  }
  absl::StatusOr<std::map<std::string, std::string>> labels =
      StringMap(r, Child(spec, "labels"), "spec.labels");
  if (!labels.ok()) return labels.status();
  entry.labels = *std::move(labels);
  absl::StatusOr<std::optional<std::string>> sa =
      ParseServiceAccount(r, Child(spec, "serviceAccount"), "spec.serviceAccount");
  if (!sa.ok()) return sa.status();
  entry.service_account = sa->value_or(std::string(model::kDefaultServiceAccount));

  std::vector<std::pair<YAML::Node, std::string>> entries;
  const YAML::Node address = Child(spec, "address");
  const YAML::Node addresses = Child(spec, "addresses");
  if (!Absent(address) && !Absent(addresses)) {
    return r.Invalid("spec.addresses", addresses, "set spec.address or spec.addresses, not both");
  }
  if (!Absent(address)) entries.emplace_back(address, "spec.address");
  if (!Absent(addresses)) {
    if (absl::Status s = ExpectList(r, addresses, "spec.addresses"); !s.ok()) return s;
    if (addresses.size() > 2) {
      return r.Invalid("spec.addresses", addresses,
                       "must hold at most two addresses, one per family");
    }
    for (size_t i = 0; i < addresses.size(); ++i) {
      entries.emplace_back(addresses[i], Index("spec.addresses", i));
    }
  }
  for (const auto& [node, path] : entries) {
    // Istio also takes a DNS name or a Unix socket here; the datapath keys identities by IP.
    if (IsScalar(node) && !IpAddress::Parse(node.Scalar()).ok()) {
      return r.Invalid(path, node,
                       "must be an IPv4 or IPv6 address (host names are not supported)");
    }
  }
  absl::StatusOr<std::vector<IpAddress>> ips = ParseWorkloadIps(r, entries);
  if (!ips.ok()) return ips.status();
  entry.ips = *std::move(ips);
  return entry;
}

// Namespaces are cluster-scoped: only metadata.name and metadata.labels matter.
absl::StatusOr<NamespaceManifest> ParseNamespace(Reporter& r, const YAML::Node& object,
                                                 absl::string_view file) {
  const YAML::Node meta = Child(object, "metadata");
  if (Absent(meta)) return r.Missing("metadata");
  if (absl::Status s = ExpectMap(r, meta, "metadata"); !s.ok()) return s;
  const YAML::Node name = Child(meta, "name");
  absl::StatusOr<std::string> name_text = ReqString(r, name, "metadata.name");
  if (!name_text.ok()) return name_text.status();
  if (!IsDnsLabel(*name_text)) return r.Invalid("metadata.name", name, kDnsLabelRule);
  r.set_object(absl::StrCat("Namespace ", *name_text));
  absl::StatusOr<std::map<std::string, std::string>> labels =
      StringMap(r, Child(meta, "labels"), "metadata.labels");
  if (!labels.ok()) return labels.status();
  return NamespaceManifest{.source = std::string(file), .name = *name_text, .labels = *labels};
}

// ---- Documents ------------------------------------------------------------------------------

// Best effort "kind apiVersion ns/name" for the note about a skipped object; never fails.
std::string DescribeIgnored(const YAML::Node& object, absl::string_view api_version,
                            absl::string_view kind) {
  std::string text = absl::StrCat(api_version, " ", kind);
  const YAML::Node meta = Child(object, "metadata");
  const YAML::Node name = Child(meta, "name");
  if (IsScalar(name)) {
    const YAML::Node ns = Child(meta, "namespace");
    absl::StrAppend(&text, " ", IsScalar(ns) ? ns.Scalar() : "default", "/", name.Scalar());
  }
  return text;
}

absl::Status ParseDocument(absl::string_view file, size_t number, const YAML::Node& doc,
                           ParsedManifests& out) {
  if (Absent(doc)) return absl::OkStatus();  // an empty document, e.g. a trailing `---`
  Reporter r(file, absl::StrCat("document ", number));
  if (absl::Status s = ExpectMap(r, doc, "", "must be a map (a Kubernetes object)"); !s.ok()) {
    return s;
  }
  absl::StatusOr<std::string> api_version = ReqString(r, Child(doc, "apiVersion"), "apiVersion");
  if (!api_version.ok()) return api_version.status();
  absl::StatusOr<std::string> kind = ReqString(r, Child(doc, "kind"), "kind");
  if (!kind.ok()) return kind.status();
  r.set_object(absl::StrCat("document ", number, " (", *kind, ")"));

  if (*api_version == "v1" && *kind == "Service") {
    absl::StatusOr<ServiceManifest> svc = ParseService(r, doc, file);
    if (!svc.ok()) return svc.status();
    out.services.push_back(*std::move(svc));
  } else if (*api_version == "discovery.k8s.io/v1" && *kind == "EndpointSlice") {
    absl::StatusOr<EndpointSliceManifest> slice = ParseEndpointSlice(r, doc, file);
    if (!slice.ok()) return slice.status();
    out.slices.push_back(*std::move(slice));
  } else if (*api_version == "v1" && *kind == "Pod") {
    absl::StatusOr<PodManifest> pod = ParsePod(r, doc, file);
    if (!pod.ok()) return pod.status();
    out.pods.push_back(*std::move(pod));
  } else if (*api_version == "v1" && *kind == "Namespace") {
    absl::StatusOr<NamespaceManifest> ns = ParseNamespace(r, doc, file);
    if (!ns.ok()) return ns.status();
    out.namespaces.push_back(*std::move(ns));
  } else if (*api_version == kWorkloadEntryApiVersion && *kind == "WorkloadEntry") {
    absl::StatusOr<WorkloadEntryManifest> entry = ParseWorkloadEntry(r, doc, file);
    if (!entry.ok()) return entry.status();
    out.workload_entries.push_back(*std::move(entry));
  } else if (*api_version == kWorkloadEntryApiVersion && *kind == kAuthorizationPolicyKind) {
    absl::StatusOr<AuthorizationPolicyManifest> policy =
        ParseAuthorizationPolicy(doc, std::string_view(file.data(), file.size()),
                                 absl::StrCat("document ", number, " (AuthorizationPolicy)"));
    if (!policy.ok()) return policy.status();
    out.authorization_policies.push_back(*std::move(policy));
  } else if (*api_version == kWorkloadEntryApiVersion && *kind == kTrafficPolicyKind) {
    absl::StatusOr<TrafficPolicyManifest> policy = ParseTrafficPolicy(r, doc, file);
    if (!policy.ok()) return policy.status();
    out.traffic_policies.push_back(*std::move(policy));
  } else {
    out.notes.push_back(absl::StrCat(
        file, ": document ", number, ": ignored ", DescribeIgnored(doc, *api_version, *kind),
        ": standalone mode reads only v1 Service, Pod and Namespace, "
        "discovery.k8s.io/v1 EndpointSlice and ",
        ToAbsl(kWorkloadEntryApiVersion), " WorkloadEntry and TrafficPolicy"));
  }
  return absl::OkStatus();
}

// Sees a document stream's events without building nodes, to find where the parser stops making
// progress: yaml-cpp 0.7's LoadAll() loops for ever, allocating a null document per turn, on a
// stray flow indicator where a node should start (a file beginning with ", "; found by
// tests/fuzz/manifest_parser_fuzz, upstream jbeder/yaml-cpp#1040, fixed after 0.8). Such a
// document is a bare null at the same position as the one before it.
class ProgressCheck : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark&) override { events_ = 0; }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t) override {
    ++events_;
    null_mark_ = mark;
  }
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override { ++events_; }
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {
    ++events_;
  }
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {
    ++events_;
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {
    ++events_;
  }
  void OnMapEnd() override {}

  // After a document: true when it was a bare null at the same position as the previous one.
  bool Stuck() {
    const bool bare_null = events_ == 1 && !null_mark_.is_null();
    const bool stuck = bare_null && last_null_pos_ == null_mark_.pos;
    if (stuck) stuck_mark_ = null_mark_;
    last_null_pos_ = bare_null ? null_mark_.pos : -1;
    null_mark_ = YAML::Mark::null_mark();
    return stuck;
  }
  // Where the parser stopped making progress; null_mark() before Stuck() returned true.
  const YAML::Mark& stuck_mark() const { return stuck_mark_; }

 private:
  int events_ = 0;
  YAML::Mark null_mark_ = YAML::Mark::null_mark();
  YAML::Mark stuck_mark_ = YAML::Mark::null_mark();
  int last_null_pos_ = -1;
};

// InvalidArgument naming the position where yaml-cpp would loop; OK when the stream ends.
absl::Status CheckParserProgress(const std::string& yaml, absl::string_view file_label) {
  std::istringstream in(yaml);
  YAML::Parser parser(in);
  ProgressCheck check;
  // A real document consumes input, so a stream has at most one per byte (plus an empty last one).
  for (size_t docs = 0; docs <= yaml.size() + 1; ++docs) {
    if (!parser.HandleNextDocument(check)) return absl::OkStatus();
    if (check.Stuck()) break;
  }
  const YAML::Mark& mark = check.stuck_mark();
  if (mark.is_null()) {
    return absl::InvalidArgumentError(
        absl::StrCat(file_label, ": YAML syntax error: unexpected flow indicator"));
  }
  return absl::InvalidArgumentError(absl::StrCat(file_label, ": line ", mark.line + 1, ", column ",
                                                 mark.column + 1,
                                                 ": YAML syntax error: unexpected flow indicator "
                                                 "(',', ']' or '}') where a value should start"));
}

absl::StatusOr<ParsedManifests> ParseManifestsOrThrow(absl::string_view yaml,
                                                      absl::string_view file_label) {
  std::vector<YAML::Node> docs;
  try {
    const std::string text(yaml);
    if (absl::Status s = CheckParserProgress(text, file_label); !s.ok()) return s;
    docs = YAML::LoadAll(text);
  } catch (const YAML::Exception& e) {
    if (e.mark.is_null()) {
      return absl::InvalidArgumentError(absl::StrCat(file_label, ": YAML syntax error: ", e.msg));
    }
    return absl::InvalidArgumentError(absl::StrCat(file_label, ": line ", e.mark.line + 1,
                                                   ", column ", e.mark.column + 1,
                                                   ": YAML syntax error: ", e.msg));
  }
  ParsedManifests out;
  for (size_t i = 0; i < docs.size(); ++i) {
    if (absl::Status s = ParseDocument(file_label, i + 1, docs[i], out); !s.ok()) return s;
  }
  return out;
}

}  // namespace

absl::StatusOr<ParsedManifests> ParseManifests(std::string_view yaml, std::string_view label) {
  const absl::string_view file_label = ToAbsl(label);
  // yaml-cpp reports malformed input and misuse by throwing; nothing may escape this module, so the
  // whole walk runs under one catch as a backstop behind the explicit shape checks.
  try {
    return ParseManifestsOrThrow(ToAbsl(yaml), file_label);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(file_label, ": cannot read YAML: ", e.what()));
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat(file_label, ": cannot read YAML: ", e.what()));
  } catch (...) {
    return absl::InternalError(absl::StrCat(file_label, ": cannot read YAML: unknown error"));
  }
}

absl::StatusOr<std::string> ReadManifestFile(const std::filesystem::path& path) {
  // O_NONBLOCK so a FIFO someone named *.yaml cannot block the agent in open(); it is refused
  // below.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return sys::ErrnoToStatus(errno, path.string());
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return sys::ErrnoToStatus(err, path.string());
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return absl::FailedPreconditionError(absl::StrCat(path.string(), ": not a regular file"));
  }
  std::string content;
  absl::Status status;
  char buf[64 * 1024];
  while (true) {
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      status = sys::ErrnoToStatus(errno, path.string());
      break;
    }
    if (n == 0) break;
    if (content.size() + static_cast<size_t>(n) > kMaxManifestFileBytes) {
      status = absl::ResourceExhaustedError(
          absl::StrCat(path.string(), ": file is larger than ", kMaxManifestFileBytes, " bytes"));
      break;
    }
    content.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  if (!status.ok()) return status;
  return content;
}

absl::StatusOr<ParsedManifests> ParseManifestFile(const std::filesystem::path& path) {
  absl::StatusOr<std::string> content = ReadManifestFile(path);
  if (!content.ok()) return content.status();
  return ParseManifests(*content, path.string());
}

}  // namespace sockmesh::sources
