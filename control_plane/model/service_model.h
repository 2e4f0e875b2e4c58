// SPDX-License-Identifier: Apache-2.0
// The desired state of the socket load balancer, independent of where it came from (manifests
// today, the control plane's stream later) and of how the kernel stores it. Sources produce it; the
// agent's datapath module turns it into kernel map entries.
#ifndef SOCKMESH_CONTROL_PLANE_MODEL_SERVICE_MODEL_H_
#define SOCKMESH_CONTROL_PLANE_MODEL_SERVICE_MODEL_H_

#include <array>
#include <compare>
#include <cstdint>
#include <iosfwd>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "control_plane/model/authorization_policy.h"
#include "control_plane/model/ip_address.h"
#include "control_plane/model/workload_model.h"

namespace sockmesh::model {

enum class Protocol : uint8_t { kTcp, kUdp };
enum class LbAlgorithm : uint8_t { kRandom, kMaglev, kLeastConnections };
enum class SessionAffinity : uint8_t { kNone, kClientIP };

std::string_view ProtocolName(Protocol p);  // "TCP" / "UDP"
// "random" / "maglev" / "least-connections", as in the sockmesh.io/lb-algorithm annotation.
std::string_view LbAlgorithmName(LbAlgorithm a);

// "None" / "ClientIP", spelled as in Kubernetes manifests.
std::string_view SessionAffinityName(SessionAffinity a);

// One address a client dials: VIP, port and protocol. A Kubernetes Service with two ports and two
// cluster IPs yields four frontends.
struct Frontend {
  IpAddress vip;
  uint16_t port = 0;  // host byte order
  Protocol protocol = Protocol::kTcp;
  auto operator<=>(const Frontend&) const = default;
  std::string ToString() const;  // "127.10.0.1:80/TCP", "[fd00::1]:80/TCP"
};

struct Backend {
  IpAddress address;
  uint16_t port = 0;    // host byte order
  uint32_t weight = 1;  // relative share for random selection; 1..65535
  auto operator<=>(const Backend&) const = default;
  std::string ToString() const;
};

// The largest per-backend connection limit (the kernel holds it in 16 bits).
inline constexpr uint32_t kMaxConnectionsPerBackend = 65535;

// Outlier ejection (a TrafficPolicy's outlierDetection): a backend whose connects fail
// `consecutive_connect_failures` times in a row is skipped for base_ejection_ms times the number of
// times it has been ejected, then tried again. 0 failures = off.
inline constexpr uint32_t kMaxConsecutiveConnectFailures = 65535;
inline constexpr uint32_t kMaxBaseEjectionMs = 3600 * 1000;  // an hour

struct OutlierDetection {
  uint32_t consecutive_connect_failures = 0;  // 0 = no outlier detection
  uint32_t base_ejection_ms = 30000;          // Istio's default baseEjectionTime (30s)
  uint32_t max_ejection_percent = 10;         // Istio's default; at least one backend when > 0
  bool enabled() const { return consecutive_connect_failures != 0; }
  bool operator==(const OutlierDetection&) const = default;
};

// A frontend with everything the datapath needs to balance it. Only ready endpoints become
// backends; an empty list means "refuse connections" (kube-proxy's REJECT).
struct ServiceEntry {
  std::string namespace_name;  // Kubernetes namespace
  std::string service_name;    // Kubernetes Service name
  std::string port_name;       // Service port name ("" when unnamed)
  Frontend frontend;
  LbAlgorithm algorithm = LbAlgorithm::kRandom;
  SessionAffinity affinity = SessionAffinity::kNone;
  uint32_t affinity_timeout_seconds = 10800;  // Kubernetes' default for ClientIP
  // Circuit breaker: live TCP connections one backend may hold for this frontend; 0 = unlimited.
  uint32_t max_connections_per_backend = 0;
  OutlierDetection outlier;
  // "namespace/name" of the TrafficPolicy that set the algorithm, limits, outlier detection and
  // weights; "" when the Service's annotations did.
  std::string traffic_policy;
  std::vector<Backend> backends;  // sorted by (address, port), no duplicates
  bool operator==(const ServiceEntry&) const = default;
};

// The whole desired state for one node. It is the service map, keyed by frontend so lookups and
// diffs are ordered (code that only balances reads it as that map, as it did before workloads
// existed), plus the workloads and their identities.
struct DesiredState : std::map<Frontend, ServiceEntry> {
  using std::map<Frontend, ServiceEntry>::map;
  DesiredState() = default;
  explicit DesiredState(std::map<Frontend, ServiceEntry> services)
      : std::map<Frontend, ServiceEntry>(std::move(services)) {}
  const std::map<Frontend, ServiceEntry>& services() const { return *this; }

  WorkloadState workloads;
  // Authorization policies compiled for the datapath, and every policy's status (refused ones
  // included), which the control plane reports but does not stream.
  CompiledPolicy policy;
  std::vector<PolicyStatus> policy_status;
  bool operator==(const DesiredState&) const = default;
};

// Stream forms (same text as ToString) so GoogleTest and logs print addresses, not byte arrays.
std::ostream& operator<<(std::ostream& os, const Frontend& frontend);
std::ostream& operator<<(std::ostream& os, const Backend& backend);

}  // namespace sockmesh::model

#endif  // SOCKMESH_CONTROL_PLANE_MODEL_SERVICE_MODEL_H_
