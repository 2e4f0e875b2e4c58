// SPDX-License-Identifier: Apache-2.0
// sockmesh.io/v1alpha1 TrafficPolicy as parsed: how connections to one Service are balanced,
// limited, ejected and split between subsets. Shaped like Istio's DestinationRule, with the canary
// weights (which Istio keeps in a VirtualService) in the same object: sockmesh has no routes.
#ifndef SOCKMESH_CONTROL_PLANE_SOURCES_TRAFFIC_POLICY_MANIFEST_H_
#define SOCKMESH_CONTROL_PLANE_SOURCES_TRAFFIC_POLICY_MANIFEST_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "control_plane/model/service_model.h"

namespace sockmesh::sources {

inline constexpr std::string_view kTrafficPolicyKind = "TrafficPolicy";

// spec.subsets[]: the backends whose workload (Pod or WorkloadEntry with the backend's address)
// carries every one of `labels`.
struct TrafficPolicySubset {
  std::string name;
  std::map<std::string, std::string> labels;
  bool operator==(const TrafficPolicySubset&) const = default;
};

// spec.split[]: the share of new connections a subset gets; the weights sum to 100.
struct TrafficPolicySplit {
  std::string subset;
  uint32_t weight = 0;  // 0..100
  bool operator==(const TrafficPolicySplit&) const = default;
};

struct TrafficPolicyManifest {
  std::string source;  // file (or "kubernetes-api"), for messages
  std::string namespace_name;
  std::string name;
  std::string host;                                // spec.host as written
  std::string host_namespace;                      // the Service spec.host names: its namespace ...
  std::string host_service;                        // ... and name
  std::optional<model::LbAlgorithm> algorithm;     // spec.trafficPolicy.loadBalancer
  std::optional<uint32_t> max_connections;         // ...connectionPool.tcp.maxConnections
  std::optional<model::OutlierDetection> outlier;  // ...outlierDetection
  std::vector<TrafficPolicySubset> subsets;
  std::vector<TrafficPolicySplit> split;  // empty = no split
  std::string Key() const { return namespace_name + "/" + name; }
  bool operator==(const TrafficPolicyManifest&) const = default;
};

}  // namespace sockmesh::sources

#endif  // SOCKMESH_CONTROL_PLANE_SOURCES_TRAFFIC_POLICY_MANIFEST_H_
