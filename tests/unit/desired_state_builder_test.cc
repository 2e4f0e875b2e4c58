// SPDX-License-Identifier: Apache-2.0
#include "control_plane/sources/desired_state_builder.h"

#include <string>

#include "control_plane/sources/manifest_parser.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sockmesh::sources {
namespace {

using model::Backend;
using model::DesiredState;
using model::Frontend;
using model::IpAddress;
using model::Protocol;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::SizeIs;

IpAddress Ip(std::string_view text) { return IpAddress::Parse(text).value(); }
Frontend Tcp(std::string_view ip, uint16_t port) { return Frontend{Ip(ip), port, Protocol::kTcp}; }
Frontend Udp(std::string_view ip, uint16_t port) { return Frontend{Ip(ip), port, Protocol::kUdp}; }
Backend Be(std::string_view ip, uint16_t port, uint32_t weight = 1) {
  return Backend{Ip(ip), port, weight};
}

// Parses each (file name, YAML) pair as its own file and joins everything.
absl::StatusOr<DesiredState> Build(
    std::initializer_list<std::pair<std::string_view, std::string_view>> files) {
  std::vector<ServiceManifest> services;
  std::vector<EndpointSliceManifest> slices;
  for (const auto& [name, yaml] : files) {
    absl::StatusOr<ParsedManifests> parsed = ParseManifests(yaml, name);
    EXPECT_TRUE(parsed.ok()) << parsed.status();
    if (!parsed.ok()) return parsed.status();
    services.insert(services.end(), parsed->services.begin(), parsed->services.end());
    slices.insert(slices.end(), parsed->slices.begin(), parsed->slices.end());
  }
  return BuildDesiredState(services, slices);
}

absl::StatusOr<DesiredState> Build(std::string_view yaml) { return Build({{"test.yaml", yaml}}); }

TEST(BuildDesiredStateTest, OneEntryPerPortAndClusterIpWithReadyBackends) {
  absl::StatusOr<DesiredState> state = Build(R"(
apiVersion: v1
kind: Service
metadata: {name: echo, namespace: demo, annotations: {sockmesh.io/lb-algorithm: maglev}}
spec:
  clusterIP: 127.10.0.10
  sessionAffinity: ClientIP
  sessionAffinityConfig: {clientIP: {timeoutSeconds: 60}}
  ports:
    - {name: http, port: 80, targetPort: http}
    - {name: udp-echo, port: 9000, protocol: UDP}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: echo-1, namespace: demo, labels: {kubernetes.io/service-name: echo}}
addressType: IPv4
endpoints:
  - addresses: [127.0.0.13]
  - addresses: [127.0.0.11]
    conditions: {ready: true}
  - addresses: [127.0.0.14]
    conditions: {ready: false}
  - addresses: [127.0.0.12]
ports:
  - {name: http, port: 8080}
  - {name: udp-echo, port: 9001, protocol: UDP}
)");
  ASSERT_TRUE(state.ok()) << state.status();
  ASSERT_THAT(*state, SizeIs(2));

  const model::ServiceEntry& http = state->at(Tcp("127.10.0.10", 80));
  EXPECT_EQ(http.namespace_name, "demo");
  EXPECT_EQ(http.service_name, "echo");
  EXPECT_EQ(http.port_name, "http");
  EXPECT_EQ(http.frontend, Tcp("127.10.0.10", 80));
  EXPECT_EQ(http.algorithm, model::LbAlgorithm::kMaglev);
  EXPECT_EQ(http.affinity, model::SessionAffinity::kClientIP);
  EXPECT_EQ(http.affinity_timeout_seconds, 60u);
  // Sorted, and the not-ready 127.0.0.14 is left out.
  EXPECT_THAT(http.backends,
              ElementsAre(Be("127.0.0.11", 8080), Be("127.0.0.12", 8080), Be("127.0.0.13", 8080)));

  // The slice's port of the same name wins over the numeric targetPort (defaulted to 9000).
  const model::ServiceEntry& udp = state->at(Udp("127.10.0.10", 9000));
  EXPECT_EQ(udp.port_name, "udp-echo");
  EXPECT_THAT(udp.backends,
              ElementsAre(Be("127.0.0.11", 9001), Be("127.0.0.12", 9001), Be("127.0.0.13", 9001)));
}

TEST(BuildDesiredStateTest, DualStackServiceGetsBackendsOfEachFamily) {
  absl::StatusOr<DesiredState> state = Build(R"(
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  clusterIPs: [127.10.0.1, "fd00::1"]
  ports: [{name: http, port: 80, targetPort: 8080}, {name: https, port: 443, targetPort: 8443}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-v4, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
endpoints: [{addresses: [10.0.0.1]}]
ports: [{name: http, port: 8080}, {name: https, port: 8443}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-v6, labels: {kubernetes.io/service-name: web}}
addressType: IPv6
endpoints: [{addresses: ["fd00::a"]}, {addresses: ["fd00::b"]}]
ports: [{name: http, port: 8080}, {name: https, port: 8443}]
)");
  ASSERT_TRUE(state.ok()) << state.status();
  ASSERT_THAT(*state, SizeIs(4));
  EXPECT_THAT(state->at(Tcp("127.10.0.1", 80)).backends, ElementsAre(Be("10.0.0.1", 8080)));
  EXPECT_THAT(state->at(Tcp("127.10.0.1", 443)).backends, ElementsAre(Be("10.0.0.1", 8443)));
  EXPECT_THAT(state->at(Tcp("fd00::1", 80)).backends,
              ElementsAre(Be("fd00::a", 8080), Be("fd00::b", 8080)));
  EXPECT_THAT(state->at(Tcp("fd00::1", 443)).backends,
              ElementsAre(Be("fd00::a", 8443), Be("fd00::b", 8443)));
}

TEST(BuildDesiredStateTest, NamedTargetPortResolvesPerSlice) {
  // Two slices (e.g. two versions of a Deployment) expose the named port on different numbers.
  absl::StatusOr<DesiredState> state = Build(R"(
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {clusterIP: 127.10.0.1, ports: [{name: http, port: 80, targetPort: web}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-v1, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
endpoints: [{addresses: [10.0.0.1]}]
ports: [{name: http, port: 8080}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-v2, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
endpoints: [{addresses: [10.0.0.2]}]
ports: [{name: http, port: 9090}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-unmatched, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
endpoints: [{addresses: [10.0.0.3]}]
ports: [{name: metrics, port: 9100}]
)");
  ASSERT_TRUE(state.ok()) << state.status();
  // web-unmatched has no "http" port and the targetPort is a name: it contributes nothing.
  EXPECT_THAT(state->at(Tcp("127.10.0.1", 80)).backends,
              ElementsAre(Be("10.0.0.1", 8080), Be("10.0.0.2", 9090)));
}

TEST(BuildDesiredStateTest, NumericTargetPortIsTheFallback) {
  absl::StatusOr<DesiredState> state = Build(R"(
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {clusterIP: 127.10.0.1, ports: [{name: http, port: 80, targetPort: 8080}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
endpoints: [{addresses: [10.0.0.1]}]
)");
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_THAT(state->at(Tcp("127.10.0.1", 80)).backends, ElementsAre(Be("10.0.0.1", 8080)));
}

TEST(BuildDesiredStateTest, SlicePortMustHaveTheSameProtocol) {
  absl::StatusOr<DesiredState> state = Build(R"(
apiVersion: v1
kind: Service
metadata: {name: dns}
spec: {clusterIP: 127.10.0.53, ports: [{name: dns, port: 53, protocol: UDP, targetPort: dns}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: dns-1, labels: {kubernetes.io/service-name: dns}}
addressType: IPv4
endpoints: [{addresses: [10.0.0.1]}]
ports: [{name: dns, port: 5353, protocol: TCP}]
)");
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_THAT(state->at(Udp("127.10.0.53", 53)).backends, IsEmpty());
}

TEST(BuildDesiredStateTest, ServiceWithoutSlicesHasNoBackends) {
  absl::StatusOr<DesiredState> state = Build(R"(
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec: {clusterIP: 127.10.0.1, ports: [{port: 80}]}
---
# Same Service name, other namespace: not this Service's endpoints.
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, namespace: default, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
endpoints: [{addresses: [10.0.0.1]}]
ports: [{port: 80}]
)");
  ASSERT_TRUE(state.ok()) << state.status();
  ASSERT_THAT(*state, SizeIs(1));
  EXPECT_THAT(state->at(Tcp("127.10.0.1", 80)).backends, IsEmpty());
}

TEST(BuildDesiredStateTest, WeightsAndDuplicatesKeepTheLargerWeight) {
  absl::StatusOr<DesiredState> state = Build(R"(
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {clusterIP: 127.10.0.1, ports: [{name: http, port: 80}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-stable, labels: {kubernetes.io/service-name: web},
           annotations: {sockmesh.io/weight: "90"}}
addressType: IPv4
endpoints: [{addresses: [10.0.0.2]}, {addresses: [10.0.0.1]}]
ports: [{name: http, port: 8080}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-canary, labels: {kubernetes.io/service-name: web},
           annotations: {sockmesh.io/weight: "10"}}
addressType: IPv4
endpoints: [{addresses: [10.0.0.3]}, {addresses: [10.0.0.1]}]
ports: [{name: http, port: 8080}]
)");
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_THAT(
      state->at(Tcp("127.10.0.1", 80)).backends,
      ElementsAre(Be("10.0.0.1", 8080, 90), Be("10.0.0.2", 8080, 90), Be("10.0.0.3", 8080, 10)));
}

TEST(BuildDesiredStateTest, OnlyTheFirstAddressOfAnEndpointIsUsed) {
  absl::StatusOr<DesiredState> state = Build(R"(
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {clusterIP: 127.10.0.1, ports: [{port: 80}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
endpoints: [{addresses: [10.0.0.9, 10.0.0.1]}]
ports: [{port: 80}]
)");
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_THAT(state->at(Tcp("127.10.0.1", 80)).backends, ElementsAre(Be("10.0.0.9", 80)));
}

TEST(BuildDesiredStateTest, HeadlessServicesYieldNothing) {
  absl::StatusOr<DesiredState> state = Build(R"(
apiVersion: v1
kind: Service
metadata: {name: db}
spec: {clusterIP: None, ports: [{port: 5432}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: db-1, labels: {kubernetes.io/service-name: db}}
addressType: IPv4
endpoints: [{addresses: [10.0.0.1]}]
)");
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_THAT(*state, IsEmpty());
}

TEST(BuildDesiredStateTest, TwoServicesClaimingOneFrontendIsAnError) {
  absl::StatusOr<DesiredState> state = Build({{"a.yaml", R"(
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec: {clusterIPs: ["fd00::1"], ports: [{port: 80}]}
)"},
                                              {"b.yaml", R"(
apiVersion: v1
kind: Service
metadata: {name: api, namespace: shop}
spec: {clusterIP: "fd00::1", ports: [{name: http, port: 80}, {name: dns, port: 53}]}
)"}});
  ASSERT_FALSE(state.ok());
  EXPECT_EQ(state.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(state.status().message(),
            "frontend [fd00::1]:80/TCP is claimed by two Services: Service shop/web (a.yaml) and "
            "Service shop/api (b.yaml)");
}

TEST(BuildDesiredStateTest, SameFrontendDifferentProtocolIsFine) {
  absl::StatusOr<DesiredState> state = Build(R"(
apiVersion: v1
kind: Service
metadata: {name: dns-tcp}
spec: {clusterIP: 127.10.0.53, ports: [{port: 53}]}
---
apiVersion: v1
kind: Service
metadata: {name: dns-udp}
spec: {clusterIP: 127.10.0.53, ports: [{port: 53, protocol: UDP}]}
)");
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_THAT(*state, SizeIs(2));
}

TEST(BuildDesiredStateTest, ObjectsDefinedTwiceAreErrors) {
  constexpr std::string_view kService = R"(
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {clusterIP: 127.10.0.1, ports: [{port: 80}]}
)";
  absl::StatusOr<DesiredState> state = Build({{"a.yaml", kService}, {"b.yaml", kService}});
  ASSERT_FALSE(state.ok());
  EXPECT_EQ(state.status().message(),
            "Service default/web is defined twice: in a.yaml and in b.yaml");

  constexpr std::string_view kSlice = R"(
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
)";
  state = Build({{"a.yaml", kSlice}, {"b.yaml", kSlice}});
  ASSERT_FALSE(state.ok());
  EXPECT_EQ(state.status().message(),
            "EndpointSlice default/web-1 is defined twice: in a.yaml and in b.yaml");
}

TEST(BuildDesiredStateTest, EmptyInputIsEmptyState) {
  absl::StatusOr<DesiredState> state = BuildDesiredState({}, {});
  ASSERT_TRUE(state.ok());
  EXPECT_THAT(*state, IsEmpty());
}

}  // namespace
}  // namespace sockmesh::sources
