// SPDX-License-Identifier: Apache-2.0
// Reads Kubernetes-shaped YAML (v1 Service, Pod and Namespace, discovery.k8s.io/v1 EndpointSlice,
// sockmesh.io/v1alpha1 WorkloadEntry) for standalone mode,
// where sockmesh runs without an API server and an operator writes the objects into files.
//
// Validation follows Kubernetes where it matters to the datapath, so the same files could be
// applied to a cluster; every error names the file, the object, the field path
// (`spec.ports[1].port`) and the offending value. yaml-cpp reports problems by throwing; this
// module catches them and returns absl::Status, so no exception leaves it.
#ifndef SOCKMESH_CONTROL_PLANE_SOURCES_MANIFEST_PARSER_H_
#define SOCKMESH_CONTROL_PLANE_SOURCES_MANIFEST_PARSER_H_

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "control_plane/model/service_model.h"
#include "control_plane/sources/authorization_policy_parser.h"
#include "control_plane/sources/traffic_policy_manifest.h"

namespace sockmesh::sources {

// Kubernetes' default ClientIP affinity timeout (3 hours) and the largest it accepts (1 day).
inline constexpr uint32_t kDefaultAffinityTimeoutSeconds = 10800;
inline constexpr uint32_t kMaxAffinityTimeoutSeconds = 86400;

// Annotation on a Service choosing the balancing algorithm: "random" (default), "maglev" or
// "least-connections".
inline constexpr std::string_view kLbAlgorithmAnnotation = "sockmesh.io/lb-algorithm";
// Annotation on a Service limiting the live TCP connections each backend takes from this node
// (a circuit breaker): "0" (default, unlimited) .. "65535".
inline constexpr std::string_view kMaxConnectionsAnnotation =
    "sockmesh.io/max-connections-per-backend";
// Annotation on an EndpointSlice giving every endpoint in it a weight (1..65535, default 1). Canary
// groups are separate slices of one Service with different weights.
inline constexpr std::string_view kWeightAnnotation = "sockmesh.io/weight";
inline constexpr uint32_t kMaxWeight = 65535;
// The label Kubernetes uses to tie an EndpointSlice to its Service.
inline constexpr std::string_view kServiceNameLabel = "kubernetes.io/service-name";

// Files larger than this are refused rather than parsed: manifests are small, and a runaway file
// (a log redirected into the directory by mistake) should not stall the agent.
inline constexpr size_t kMaxManifestFileBytes = 4 * 1024 * 1024;

struct ServicePortManifest {
  std::string name;  // "" only when the Service has a single port
  uint16_t port = 0;
  model::Protocol protocol = model::Protocol::kTcp;
  // spec.ports[].targetPort is a number or the name of a container port; names are resolved through
  // the EndpointSlice's port names. Exactly one of these is set. When the manifest omits
  // targetPort, Kubernetes uses `port`, and so does the parser.
  uint16_t target_port_number = 0;  // 0 when the target port is named
  std::string target_port_name;     // "" when the target port is a number
  bool operator==(const ServicePortManifest&) const = default;
};

struct ServiceManifest {
  std::string source;  // label of the file it came from, for messages
  std::string namespace_name;
  std::string name;
  std::map<std::string, std::string> annotations;
  // spec.clusterIPs (or spec.clusterIP): at most one per family. Empty for a headless Service
  // ("None"), which has no virtual IP to balance.
  std::vector<model::IpAddress> cluster_ips;
  std::vector<ServicePortManifest> ports;
  model::SessionAffinity affinity = model::SessionAffinity::kNone;
  uint32_t affinity_timeout_seconds = kDefaultAffinityTimeoutSeconds;
  model::LbAlgorithm algorithm = model::LbAlgorithm::kRandom;
  uint32_t max_connections_per_backend = 0;  // 0 = unlimited
  bool operator==(const ServiceManifest&) const = default;
};

struct EndpointManifest {
  // At least one; all of the slice's address family. Kubernetes treats them as interchangeable
  // addresses of one endpoint.
  std::vector<model::IpAddress> addresses;
  bool ready = true;  // conditions.ready; absent or null means ready, as in Kubernetes
  bool operator==(const EndpointManifest&) const = default;
};

struct EndpointPortManifest {
  std::string name;  // matched against the Service port's name; "" matches an unnamed port
  uint16_t port = 0;
  model::Protocol protocol = model::Protocol::kTcp;
  bool operator==(const EndpointPortManifest&) const = default;
};

struct EndpointSliceManifest {
  std::string source;  // label of the file it came from, for messages
  std::string namespace_name;
  std::string name;
  std::string service_name;  // metadata.labels["kubernetes.io/service-name"]
  uint8_t family = 4;        // addressType: 4 for IPv4, 6 for IPv6
  uint32_t weight = 1;       // metadata.annotations["sockmesh.io/weight"]
  std::vector<EndpointManifest> endpoints;
  std::vector<EndpointPortManifest> ports;
  bool operator==(const EndpointSliceManifest&) const = default;
};

// v1 Pod: a Kubernetes workload. Its identity is its namespace and service account.
struct PodManifest {
  std::string source;  // label of the file it came from, for messages
  std::string namespace_name;
  std::string name;
  std::map<std::string, std::string> labels;  // metadata.labels
  std::string service_account;                // spec.serviceAccountName, "default" when unset
  std::string node_name;                      // spec.nodeName; "" until scheduled
  // status.podIPs (or status.podIP); empty before the Pod has an address, after it ended
  // (Succeeded/Failed), and for hostNetwork Pods, whose address is the node's.
  std::vector<model::IpAddress> ips;
  bool operator==(const PodManifest&) const = default;
};

// The apiVersion of sockmesh's own kinds.
inline constexpr std::string_view kWorkloadEntryApiVersion = "sockmesh.io/v1alpha1";

// sockmesh.io/v1alpha1 WorkloadEntry: a workload outside Kubernetes, shaped like Istio's.
struct WorkloadEntryManifest {
  std::string source;
  std::string namespace_name;
  std::string name;
  std::map<std::string, std::string> labels;  // spec.labels
  std::string service_account;                // spec.serviceAccount, "default" when unset
  // spec.address or spec.addresses. Empty for a local standalone workload, which the agent finds
  // by its cgroup <mesh cgroup>/<namespace>/<name>.
  std::vector<model::IpAddress> ips;
  bool operator==(const WorkloadEntryManifest&) const = default;
};

// v1 Namespace: its labels (for policy); workloads in namespaces without one are still valid.
struct NamespaceManifest {
  std::string source;
  std::string name;
  std::map<std::string, std::string> labels;
  bool operator==(const NamespaceManifest&) const = default;
};

// Everything one file holds, in document order.
struct ParsedManifests {
  std::vector<ServiceManifest> services;
  std::vector<EndpointSliceManifest> slices;
  std::vector<PodManifest> pods;
  std::vector<WorkloadEntryManifest> workload_entries;
  std::vector<NamespaceManifest> namespaces;
  std::vector<AuthorizationPolicyManifest> authorization_policies;  // refused ones included
  std::vector<TrafficPolicyManifest> traffic_policies;  // sockmesh.io/v1alpha1 TrafficPolicy
  // One line per object of another kind or apiVersion, which standalone mode skips (other
  // components may read them later). Informational, not errors.
  std::vector<std::string> notes;
};

// Parses `yaml`, which may hold several `---` documents or none. `file_label` starts every error
// and note (usually the file's name). Returns InvalidArgument for YAML syntax errors (with the
// line) and for any invalid object; the first problem found is reported.
absl::StatusOr<ParsedManifests> ParseManifests(std::string_view yaml, std::string_view file_label);

// Reads a whole manifest file. Errors name the path: NotFound, PermissionDenied, or
// ResourceExhausted when it is larger than kMaxManifestFileBytes.
absl::StatusOr<std::string> ReadManifestFile(const std::filesystem::path& path);

// ReadManifestFile + ParseManifests, labelling messages with `path` as given.
absl::StatusOr<ParsedManifests> ParseManifestFile(const std::filesystem::path& path);

}  // namespace sockmesh::sources

#endif  // SOCKMESH_CONTROL_PLANE_SOURCES_MANIFEST_PARSER_H_
