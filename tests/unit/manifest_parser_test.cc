// SPDX-License-Identifier: Apache-2.0
#include "control_plane/sources/manifest_parser.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/manifest_errors.h"

namespace sockmesh::sources {
namespace {

using model::IpAddress;
using model::Protocol;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

IpAddress Ip(std::string_view text) { return IpAddress::Parse(text).value(); }

absl::StatusOr<ParsedManifests> Parse(std::string_view yaml) {
  return ParseManifests(yaml, "services.yaml");
}

// The message of the error `yaml` must produce.
std::string ErrorOf(std::string_view yaml) {
  return testing::ManifestErrorOf(yaml, "services.yaml");
}

constexpr std::string_view kServiceHeader = R"(
apiVersion: v1
kind: Service
metadata:
  name: web
)";

// A Service "default/web" whose spec is `spec` (indented by two spaces per level below spec).
std::string ServiceWithSpec(std::string_view spec) {
  return std::string(kServiceHeader) + "spec:\n" + std::string(spec);
}

// ---- Service ------------------------------------------------------------------------------

TEST(ServiceTest, MinimalServiceGetsKubernetesDefaults) {
  absl::StatusOr<ParsedManifests> parsed = Parse(ServiceWithSpec(R"(
  clusterIP: 127.10.0.1
  ports:
    - port: 80
)"));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_THAT(parsed->services, SizeIs(1));
  const ServiceManifest& svc = parsed->services[0];
  EXPECT_EQ(svc.source, "services.yaml");
  EXPECT_EQ(svc.namespace_name, "default");
  EXPECT_EQ(svc.name, "web");
  EXPECT_THAT(svc.cluster_ips, ElementsAre(Ip("127.10.0.1")));
  ASSERT_THAT(svc.ports, SizeIs(1));
  EXPECT_EQ(svc.ports[0].name, "");
  EXPECT_EQ(svc.ports[0].port, 80);
  EXPECT_EQ(svc.ports[0].protocol, Protocol::kTcp);
  EXPECT_EQ(svc.ports[0].target_port_number, 80);  // targetPort defaults to port
  EXPECT_EQ(svc.ports[0].target_port_name, "");
  EXPECT_EQ(svc.affinity, model::SessionAffinity::kNone);
  EXPECT_EQ(svc.affinity_timeout_seconds, 10800u);
  EXPECT_EQ(svc.algorithm, model::LbAlgorithm::kRandom);
  EXPECT_THAT(parsed->slices, IsEmpty());
  EXPECT_THAT(parsed->notes, IsEmpty());
}

TEST(ServiceTest, FullServiceWithBothFamilies) {
  absl::StatusOr<ParsedManifests> parsed = Parse(R"(
apiVersion: v1
kind: Service
metadata:
  name: echo
  namespace: demo
  annotations:
    sockmesh.io/lb-algorithm: maglev
    unrelated.example.com/x: "1"
spec:
  type: ClusterIP
  clusterIP: 127.10.0.10
  clusterIPs: [127.10.0.10, "fd00::10"]
  ipFamilyPolicy: PreferDualStack
  sessionAffinity: ClientIP
  sessionAffinityConfig:
    clientIP:
      timeoutSeconds: 60
  ports:
    - name: http
      port: 80
      targetPort: http-alt
      protocol: TCP
    - name: udp-echo
      port: 9000
      targetPort: 9001
      protocol: UDP
)");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_THAT(parsed->services, SizeIs(1));
  const ServiceManifest& svc = parsed->services[0];
  EXPECT_EQ(svc.namespace_name, "demo");
  EXPECT_EQ(svc.name, "echo");
  EXPECT_EQ(svc.annotations.at("unrelated.example.com/x"), "1");
  EXPECT_THAT(svc.cluster_ips, ElementsAre(Ip("127.10.0.10"), Ip("fd00::10")));
  EXPECT_EQ(svc.algorithm, model::LbAlgorithm::kMaglev);
  EXPECT_EQ(svc.affinity, model::SessionAffinity::kClientIP);
  EXPECT_EQ(svc.affinity_timeout_seconds, 60u);
  EXPECT_THAT(svc.ports, ElementsAre(ServicePortManifest{.name = "http",
                                                         .port = 80,
                                                         .protocol = Protocol::kTcp,
                                                         .target_port_number = 0,
                                                         .target_port_name = "http-alt"},
                                     ServicePortManifest{.name = "udp-echo",
                                                         .port = 9000,
                                                         .protocol = Protocol::kUdp,
                                                         .target_port_number = 9001,
                                                         .target_port_name = ""}));
}

TEST(ServiceTest, Ipv6OnlyServiceFromClusterIpsAlone) {
  absl::StatusOr<ParsedManifests> parsed = Parse(ServiceWithSpec(R"(
  clusterIPs: ["fd00::1"]
  ports: [{port: 443}]
)"));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_THAT(parsed->services[0].cluster_ips, ElementsAre(Ip("fd00::1")));
}

TEST(ServiceTest, HeadlessServiceHasNoClusterIpsAndIsNotAnError) {
  absl::StatusOr<ParsedManifests> parsed = Parse(ServiceWithSpec(R"(
  clusterIP: None
  ports:
    - port: 80
)"));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_THAT(parsed->services[0].cluster_ips, IsEmpty());
  EXPECT_THAT(parsed->services[0].ports, SizeIs(1));

  // Headless Services may omit ports, as in Kubernetes.
  parsed = Parse(ServiceWithSpec("  clusterIPs: [None]\n"));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_THAT(parsed->services[0].cluster_ips, IsEmpty());
}

TEST(ServiceTest, ExternalNameServiceHasNoFrontends) {
  absl::StatusOr<ParsedManifests> parsed = Parse(ServiceWithSpec(R"(
  type: ExternalName
  externalName: db.example.com
)"));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_THAT(parsed->services[0].cluster_ips, IsEmpty());
}

TEST(ServiceTest, TargetPortForms) {
  absl::StatusOr<ParsedManifests> parsed = Parse(ServiceWithSpec(R"(
  clusterIP: 127.10.0.1
  ports:
    - {name: a, port: 80, targetPort: 8080}
    - {name: b, port: 81, targetPort: "8081"}
    - {name: c, port: 82, targetPort: metrics}
    - {name: d, port: 83}
)"));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const auto& ports = parsed->services[0].ports;
  ASSERT_THAT(ports, SizeIs(4));
  EXPECT_EQ(ports[0].target_port_number, 8080);
  EXPECT_EQ(ports[1].target_port_number, 8081);
  EXPECT_EQ(ports[2].target_port_number, 0);
  EXPECT_EQ(ports[2].target_port_name, "metrics");
  EXPECT_EQ(ports[3].target_port_number, 83);
}

TEST(ServiceErrorTest, NonNumericPortNamesFileObjectPathAndValue) {
  EXPECT_EQ(
      ErrorOf(ServiceWithSpec(R"(
  clusterIP: 127.10.0.1
  ports:
    - name: http
      port: http
)")),
      "services.yaml: Service default/web: spec.ports[0].port: invalid value \"http\": must be "
      "an integer 1-65535");
}

TEST(ServiceErrorTest, PortOutOfRangeOrMissing) {
  EXPECT_EQ(ErrorOf(ServiceWithSpec(R"(
  clusterIP: 127.10.0.1
  ports:
    - {name: a, port: 80}
    - {name: b, port: 70000}
)")),
            "services.yaml: Service default/web: spec.ports[1].port: invalid value \"70000\": must "
            "be an integer 1-65535");
  EXPECT_THAT(ErrorOf(ServiceWithSpec("  clusterIP: 127.10.0.1\n  ports: [{port: 0}]\n")),
              HasSubstr("spec.ports[0].port: invalid value \"0\": must be an integer 1-65535"));
  EXPECT_THAT(ErrorOf(ServiceWithSpec("  clusterIP: 127.10.0.1\n  ports: [{port: -80}]\n")),
              HasSubstr("spec.ports[0].port: invalid value \"-80\""));
  // YAML 1.1 readers take 0120 as octal: refuse rather than guess.
  EXPECT_THAT(ErrorOf(ServiceWithSpec("  clusterIP: 127.10.0.1\n  ports: [{port: 0120}]\n")),
              HasSubstr("spec.ports[0].port: invalid value \"0120\""));
  EXPECT_EQ(ErrorOf(ServiceWithSpec("  clusterIP: 127.10.0.1\n  ports: [{name: http}]\n")),
            "services.yaml: Service default/web: spec.ports[0].port: required value missing");
  EXPECT_EQ(ErrorOf(ServiceWithSpec("  clusterIP: 127.10.0.1\n")),
            "services.yaml: Service default/web: spec.ports: required value missing");
}

TEST(ServiceErrorTest, TargetPortInvalid) {
  EXPECT_EQ(ErrorOf(ServiceWithSpec(R"(
  clusterIP: 127.10.0.1
  ports: [{port: 80, targetPort: 0}]
)")),
            "services.yaml: Service default/web: spec.ports[0].targetPort: invalid value \"0\": "
            "must be an integer 1-65535 or a port name");
  EXPECT_THAT(ErrorOf(ServiceWithSpec(R"(
  clusterIP: 127.10.0.1
  ports: [{port: 80, targetPort: HTTP}]
)")),
              HasSubstr("spec.ports[0].targetPort: invalid value \"HTTP\": must be an integer "
                        "1-65535 or a port name (at most 15 lowercase"));
}

TEST(ServiceErrorTest, SctpIsRefused) {
  EXPECT_EQ(ErrorOf(ServiceWithSpec(R"(
  clusterIP: 127.10.0.1
  ports: [{port: 80, protocol: SCTP}]
)")),
            "services.yaml: Service default/web: spec.ports[0].protocol: invalid value \"SCTP\": "
            "SCTP is not supported: must be TCP or UDP");
  EXPECT_THAT(ErrorOf(ServiceWithSpec(R"(
  clusterIP: 127.10.0.1
  ports: [{port: 80, protocol: tcp}]
)")),
              HasSubstr("spec.ports[0].protocol: invalid value \"tcp\": must be TCP or UDP"));
}

TEST(ServiceErrorTest, DuplicatePortNames) {
  EXPECT_EQ(ErrorOf(ServiceWithSpec(R"(
  clusterIP: 127.10.0.1
  ports:
    - {name: http, port: 80}
    - {name: metrics, port: 9090}
    - {name: http, port: 8080}
)")),
            "services.yaml: Service default/web: spec.ports[2].name: invalid value \"http\": "
            "duplicate of spec.ports[0].name");
}

TEST(ServiceErrorTest, SeveralPortsMustAllBeNamed) {
  EXPECT_EQ(ErrorOf(ServiceWithSpec(R"(
  clusterIP: 127.10.0.1
  ports:
    - {name: http, port: 80}
    - {port: 443}
)")),
            "services.yaml: Service default/web: spec.ports[1].name: required value missing: every "
            "port must be named when a Service has several");
}

TEST(ServiceErrorTest, DuplicatePortAndProtocol) {
  EXPECT_EQ(ErrorOf(ServiceWithSpec(R"(
  clusterIP: 127.10.0.1
  ports:
    - {name: a, port: 53, protocol: UDP}
    - {name: b, port: 53, protocol: TCP}
    - {name: c, port: 53, protocol: UDP}
)")),
            "services.yaml: Service default/web: spec.ports[2].port: invalid value \"53\": "
            "duplicate of spec.ports[0] (53/UDP)");
}

TEST(ServiceErrorTest, BadClusterIps) {
  EXPECT_EQ(ErrorOf(ServiceWithSpec("  clusterIP: 10.0.0.300\n  ports: [{port: 80}]\n")),
            "services.yaml: Service default/web: spec.clusterIP: invalid value \"10.0.0.300\": "
            "must be an IPv4 or IPv6 address");
  EXPECT_EQ(ErrorOf(ServiceWithSpec("  clusterIP: 0.0.0.0\n  ports: [{port: 80}]\n")),
            "services.yaml: Service default/web: spec.clusterIP: invalid value \"0.0.0.0\": "
            "must not be the unspecified address");
  EXPECT_EQ(ErrorOf(ServiceWithSpec("  ports: [{port: 80}]\n")),
            "services.yaml: Service default/web: spec.clusterIP: required value missing: "
            "standalone mode allocates no IPs: set an address, or \"None\" for a headless "
            "Service");
  EXPECT_EQ(ErrorOf(ServiceWithSpec(
                "  clusterIP: 127.10.0.1\n  clusterIPs: [127.10.0.2]\n  ports: [{port: 80}]\n")),
            "services.yaml: Service default/web: spec.clusterIPs[0]: invalid value "
            "\"127.10.0.2\": must equal spec.clusterIP \"127.10.0.1\"");
  EXPECT_EQ(
      ErrorOf(ServiceWithSpec("  clusterIPs: [127.10.0.1, 127.10.0.2]\n  ports: [{port: 80}]\n")),
      "services.yaml: Service default/web: spec.clusterIPs[1]: invalid value "
      "\"127.10.0.2\": must be of the other IP family than spec.clusterIPs[0]");
  EXPECT_THAT(ErrorOf(ServiceWithSpec(
                  "  clusterIPs: [127.10.0.1, \"fd00::1\", \"fd00::2\"]\n  ports: [{port: 80}]\n")),
              HasSubstr("spec.clusterIPs: invalid value [127.10.0.1, fd00::1, fd00::2]: "
                        "must hold at most two addresses"));
  EXPECT_THAT(ErrorOf(ServiceWithSpec("  clusterIPs: [None, \"fd00::1\"]\n")),
              HasSubstr("spec.clusterIPs[0]: invalid value \"None\": a headless Service must "
                        "have \"None\" as its only cluster IP"));
  EXPECT_THAT(ErrorOf(ServiceWithSpec("  clusterIP: [127.10.0.1]\n  ports: [{port: 80}]\n")),
              HasSubstr("spec.clusterIP: invalid value [127.10.0.1]: must be a string"));
}

TEST(ServiceErrorTest, WrongShapes) {
  EXPECT_EQ(ErrorOf(ServiceWithSpec("  clusterIP: 127.10.0.1\n  ports:\n    port: 80\n")),
            "services.yaml: Service default/web: spec.ports: invalid value {port: 80}: must be a "
            "list");
  EXPECT_EQ(ErrorOf(std::string(kServiceHeader) + "spec: [1, 2]\n"),
            "services.yaml: Service default/web: spec: invalid value [1, 2]: must be a map");
  EXPECT_EQ(ErrorOf(std::string(kServiceHeader)),
            "services.yaml: Service default/web: spec: required value missing");
  EXPECT_THAT(ErrorOf(ServiceWithSpec("  clusterIP: 127.10.0.1\n  ports: [80]\n")),
              HasSubstr("spec.ports[0]: invalid value \"80\": must be a map"));
}

TEST(ServiceErrorTest, MetadataProblemsNameTheDocument) {
  EXPECT_EQ(ErrorOf("apiVersion: v1\nkind: Service\nmetadata: {}\nspec: {}\n"),
            "services.yaml: document 1 (Service): metadata.name: required value missing");
  EXPECT_EQ(ErrorOf("apiVersion: v1\nkind: Service\nspec: {}\n"),
            "services.yaml: document 1 (Service): metadata: required value missing");
  EXPECT_EQ(ErrorOf("apiVersion: v1\nkind: Service\nmetadata: {name: Web}\n"),
            "services.yaml: document 1 (Service): metadata.name: invalid value \"Web\": must be "
            "a DNS label starting with a letter (lowercase letters, digits and '-', at most 63 "
            "characters)");
  EXPECT_THAT(
      ErrorOf("apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: Demo_1}\n"),
      HasSubstr("services.yaml: Service web: metadata.namespace: invalid value \"Demo_1\""));
  EXPECT_THAT(ErrorOf("apiVersion: v1\nkind: Service\nmetadata: {name: web, annotations: [a]}\n"),
              HasSubstr("Service default/web: metadata.annotations: invalid value [a]: must be a "
                        "map"));
}

TEST(ServiceErrorTest, AffinityAndAlgorithm) {
  EXPECT_EQ(ErrorOf(ServiceWithSpec(R"(
  clusterIP: 127.10.0.1
  ports: [{port: 80}]
  sessionAffinity: ClientIP
  sessionAffinityConfig:
    clientIP:
      timeoutSeconds: 86401
)")),
            "services.yaml: Service default/web: "
            "spec.sessionAffinityConfig.clientIP.timeoutSeconds: invalid value \"86401\": must be "
            "an integer 1-86400");
  EXPECT_THAT(ErrorOf(ServiceWithSpec(R"(
  clusterIP: 127.10.0.1
  ports: [{port: 80}]
  sessionAffinityConfig: {clientIP: {timeoutSeconds: 0}}
)")),
              HasSubstr("timeoutSeconds: invalid value \"0\": must be an integer 1-86400"));
  EXPECT_EQ(ErrorOf(ServiceWithSpec(R"(
  clusterIP: 127.10.0.1
  ports: [{port: 80}]
  sessionAffinity: Sticky
)")),
            "services.yaml: Service default/web: spec.sessionAffinity: invalid value \"Sticky\": "
            "must be None or ClientIP");
  EXPECT_EQ(ErrorOf(R"(
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
  annotations: {sockmesh.io/lb-algorithm: round-robin}
spec: {clusterIP: 127.10.0.1, ports: [{port: 80}]}
)"),
            "services.yaml: Service shop/web: metadata.annotations[sockmesh.io/lb-algorithm]: "
            "invalid value \"round-robin\": must be random, maglev or least-connections");
}

std::string AnnotatedService(const std::string& annotations) {
  return absl::StrCat(R"(
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
  annotations: )",
                      annotations, R"(
spec: {clusterIP: 127.10.0.1, ports: [{port: 80}]}
)");
}

TEST(ServiceTest, LeastConnectionsAndConnectionLimitAnnotations) {
  absl::StatusOr<ParsedManifests> parsed =
      Parse(AnnotatedService(R"({sockmesh.io/lb-algorithm: least-connections, )"
                             R"(sockmesh.io/max-connections-per-backend: "100"})"));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_EQ(parsed->services.size(), 1u);
  EXPECT_EQ(parsed->services[0].algorithm, model::LbAlgorithm::kLeastConnections);
  EXPECT_EQ(parsed->services[0].max_connections_per_backend, 100u);

  parsed = Parse(AnnotatedService(R"({sockmesh.io/max-connections-per-backend: "0"})"));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->services[0].max_connections_per_backend, 0u) << "0 means unlimited";
  EXPECT_EQ(parsed->services[0].algorithm, model::LbAlgorithm::kRandom);
  parsed = Parse(AnnotatedService(R"({sockmesh.io/max-connections-per-backend: "65535"})"));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->services[0].max_connections_per_backend, 65535u);
}

TEST(ServiceErrorTest, ConnectionLimitMustBeAnIntegerInRange) {
  for (const char* bad : {"-1", "65536", "ten", "1.5", ""}) {
    EXPECT_EQ(ErrorOf(AnnotatedService(
                  absl::StrCat(R"({sockmesh.io/max-connections-per-backend: ")", bad, R"("})"))),
              absl::StrCat("services.yaml: Service shop/web: "
                           "metadata.annotations[sockmesh.io/max-connections-per-backend]: "
                           "invalid value \"",
                           bad, "\": must be an integer 0-65535 (0 = unlimited)"))
        << bad;
  }
}

TEST(ServiceErrorTest, UnknownServiceType) {
  EXPECT_EQ(ErrorOf(ServiceWithSpec("  type: Internal\n  clusterIP: 127.10.0.1\n")),
            "services.yaml: Service default/web: spec.type: invalid value \"Internal\": must be "
            "ClusterIP, NodePort, LoadBalancer or ExternalName");
}

// ---- EndpointSlice ------------------------------------------------------------------------

constexpr std::string_view kSliceHeader = R"(
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-abc12
  labels:
    kubernetes.io/service-name: web
)";

std::string SliceWithBody(std::string_view body) {
  return std::string(kSliceHeader) + std::string(body);
}

TEST(EndpointSliceTest, ParsesEndpointsReadinessPortsAndWeight) {
  absl::StatusOr<ParsedManifests> parsed = Parse(R"(
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-canary
  namespace: shop
  labels:
    kubernetes.io/service-name: web
  annotations:
    sockmesh.io/weight: "5"
addressType: IPv6
endpoints:
  - addresses: ["fd00::11"]
    conditions: {ready: true}
  - addresses: ["fd00::12"]
    conditions: {ready: false, serving: true}
  - addresses: ["fd00::13"]
    conditions: {ready: null}
  - addresses: ["fd00::14", "fd00::15"]
ports:
  - {name: http, port: 8080}
  - {name: dns, port: 5353, protocol: UDP}
)");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_THAT(parsed->slices, SizeIs(1));
  const EndpointSliceManifest& slice = parsed->slices[0];
  EXPECT_EQ(slice.namespace_name, "shop");
  EXPECT_EQ(slice.name, "web-canary");
  EXPECT_EQ(slice.service_name, "web");
  EXPECT_EQ(slice.family, 6);
  EXPECT_EQ(slice.weight, 5u);
  EXPECT_THAT(slice.endpoints,
              ElementsAre(EndpointManifest{{Ip("fd00::11")}, true},
                          EndpointManifest{{Ip("fd00::12")}, false},
                          EndpointManifest{{Ip("fd00::13")}, true},  // null ready means ready
                          EndpointManifest{{Ip("fd00::14"), Ip("fd00::15")}, true}));
  EXPECT_THAT(slice.ports, ElementsAre(EndpointPortManifest{"http", 8080, Protocol::kTcp},
                                       EndpointPortManifest{"dns", 5353, Protocol::kUdp}));
}

TEST(EndpointSliceTest, DefaultsAndEmptySlice) {
  absl::StatusOr<ParsedManifests> parsed = Parse(SliceWithBody("addressType: IPv4\n"));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const EndpointSliceManifest& slice = parsed->slices[0];
  EXPECT_EQ(slice.namespace_name, "default");
  EXPECT_EQ(slice.weight, 1u);
  EXPECT_THAT(slice.endpoints, IsEmpty());
  EXPECT_THAT(slice.ports, IsEmpty());
}

TEST(EndpointSliceErrorTest, ServiceNameLabelIsRequired) {
  EXPECT_EQ(ErrorOf(R"(
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-abc12
  namespace: shop
addressType: IPv4
)"),
            "services.yaml: EndpointSlice shop/web-abc12: "
            "metadata.labels[kubernetes.io/service-name]: required value missing: it names the "
            "Service these endpoints belong to");
}

TEST(EndpointSliceErrorTest, WeightMustBeInRange) {
  const std::string slice = R"(
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-abc12
  labels: {kubernetes.io/service-name: web}
  annotations: {sockmesh.io/weight: "WEIGHT"}
addressType: IPv4
)";
  auto with_weight = [&](std::string_view weight) {
    std::string text = slice;
    text.replace(text.find("WEIGHT"), 6, weight);
    return text;
  };
  EXPECT_EQ(ErrorOf(with_weight("0")),
            "services.yaml: EndpointSlice default/web-abc12: "
            "metadata.annotations[sockmesh.io/weight]: invalid value \"0\": must be an integer "
            "1-65535");
  EXPECT_THAT(ErrorOf(with_weight("65536")), HasSubstr("invalid value \"65536\""));
  EXPECT_THAT(ErrorOf(with_weight("heavy")), HasSubstr("invalid value \"heavy\""));
  EXPECT_TRUE(Parse(with_weight("65535")).ok());
}

TEST(EndpointSliceErrorTest, AddressTypeFqdnOrUnknownIsRefused) {
  EXPECT_EQ(ErrorOf(SliceWithBody("addressType: FQDN\n")),
            "services.yaml: EndpointSlice default/web-abc12: addressType: invalid value \"FQDN\": "
            "FQDN is not supported: must be IPv4 or IPv6");
  EXPECT_THAT(ErrorOf(SliceWithBody("addressType: ipv4\n")),
              HasSubstr("addressType: invalid value \"ipv4\": must be IPv4 or IPv6"));
  EXPECT_EQ(ErrorOf(SliceWithBody("endpoints: []\n")),
            "services.yaml: EndpointSlice default/web-abc12: addressType: required value missing");
}

TEST(EndpointSliceErrorTest, AddressFamilyMustMatchAddressType) {
  EXPECT_EQ(ErrorOf(SliceWithBody(R"(addressType: IPv4
endpoints:
  - addresses: ["127.0.0.11"]
  - addresses: ["fd00::12"]
)")),
            "services.yaml: EndpointSlice default/web-abc12: endpoints[1].addresses[0]: invalid "
            "value \"fd00::12\": must be an IPv4 address: addressType is IPv4");
  EXPECT_THAT(ErrorOf(SliceWithBody(R"(addressType: IPv6
endpoints:
  - addresses: ["fd00::1", "10.0.0.1"]
)")),
              HasSubstr("endpoints[0].addresses[1]: invalid value \"10.0.0.1\": must be an IPv6 "
                        "address: addressType is IPv6"));
}

TEST(EndpointSliceErrorTest, EndpointProblems) {
  EXPECT_EQ(ErrorOf(SliceWithBody("addressType: IPv4\nendpoints:\n  - addresses: [10.0.0.400]\n")),
            "services.yaml: EndpointSlice default/web-abc12: endpoints[0].addresses[0]: invalid "
            "value \"10.0.0.400\": must be an IPv4 or IPv6 address");
  EXPECT_THAT(ErrorOf(SliceWithBody("addressType: IPv4\nendpoints:\n  - addresses: []\n")),
              HasSubstr("endpoints[0].addresses: required value missing: an endpoint needs an "
                        "address"));
  EXPECT_THAT(ErrorOf(SliceWithBody("addressType: IPv4\nendpoints:\n  - conditions: {}\n")),
              HasSubstr("endpoints[0].addresses: required value missing"));
  EXPECT_EQ(ErrorOf(SliceWithBody(R"(addressType: IPv4
endpoints:
  - addresses: [10.0.0.1]
    conditions: {ready: maybe}
)")),
            "services.yaml: EndpointSlice default/web-abc12: endpoints[0].conditions.ready: "
            "invalid value \"maybe\": must be true or false");
}

TEST(EndpointSliceErrorTest, PortProblems) {
  EXPECT_EQ(ErrorOf(SliceWithBody(R"(addressType: IPv4
ports:
  - {name: http, port: 8080}
  - {name: http, port: 8081}
)")),
            "services.yaml: EndpointSlice default/web-abc12: ports[1].name: invalid value "
            "\"http\": duplicate of ports[0].name");
  EXPECT_THAT(ErrorOf(SliceWithBody("addressType: IPv4\nports: [{name: http}]\n")),
              HasSubstr("ports[0].port: required value missing"));
  EXPECT_THAT(ErrorOf(SliceWithBody("addressType: IPv4\nports: [{port: 53, protocol: SCTP}]\n")),
              HasSubstr("ports[0].protocol: invalid value \"SCTP\": SCTP is not supported"));
}

// ---- Documents and YAML ---------------------------------------------------------------------

TEST(DocumentsTest, EmptyInputsYieldNothing) {
  for (std::string_view yaml : {"", "\n", "# only a comment\n", "---\n", "---\n---\n...\n"}) {
    absl::StatusOr<ParsedManifests> parsed = Parse(yaml);
    ASSERT_TRUE(parsed.ok()) << parsed.status() << " for " << yaml;
    EXPECT_THAT(parsed->services, IsEmpty());
    EXPECT_THAT(parsed->slices, IsEmpty());
    EXPECT_THAT(parsed->notes, IsEmpty());
  }
}

TEST(DocumentsTest, MultiDocumentFileWithIgnoredKinds) {
  absl::StatusOr<ParsedManifests> parsed = Parse(R"(
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: demo}
data: {a: b}
---
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {clusterIP: 127.10.0.1, ports: [{port: 80}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
---
apiVersion: discovery.k8s.io/v1beta1
kind: EndpointSlice
metadata: {name: web-old}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
)");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_THAT(parsed->services, SizeIs(1));
  EXPECT_THAT(parsed->slices, SizeIs(1));
  EXPECT_THAT(parsed->notes,
              ElementsAre("services.yaml: document 1: ignored v1 ConfigMap demo/settings: "
                          "standalone mode reads only v1 Service, Pod and Namespace, "
                          "discovery.k8s.io/v1 EndpointSlice and sockmesh.io/v1alpha1 "
                          "WorkloadEntry and TrafficPolicy",
                          HasSubstr("document 5: ignored discovery.k8s.io/v1beta1 EndpointSlice "
                                    "default/web-old:"),
                          HasSubstr("document 6: ignored networking.k8s.io/v1 NetworkPolicy:")));
}

TEST(DocumentsTest, ErrorsNameTheDocumentIndex) {
  EXPECT_EQ(ErrorOf("apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n"
                    "apiVersion: v1\nmetadata: {name: b}\n"),
            "services.yaml: document 2: kind: required value missing");
  EXPECT_EQ(ErrorOf("kind: Service\n"),
            "services.yaml: document 1: apiVersion: required value missing");
  EXPECT_EQ(ErrorOf("---\n- a\n- b\n"),
            "services.yaml: document 1: invalid value [a, b]: must be a map (a Kubernetes object)");
  EXPECT_EQ(ErrorOf("just text\n"),
            "services.yaml: document 1: invalid value \"just text\": must be a map (a Kubernetes "
            "object)");
}

TEST(DocumentsTest, YamlSyntaxErrorReportsLine) {
  EXPECT_EQ(ErrorOf("apiVersion: v1\nkind: Service\nmetadata:\n  name: [web\nspec: {}\n"),
            "services.yaml: line 5, column 5: YAML syntax error: end of sequence flow not found");
  EXPECT_THAT(ErrorOf("apiVersion: v1\nkind: Service\n  bad: indent\n"),
              HasSubstr("services.yaml: line 3, column"));
}

TEST(DocumentsTest, DuplicateKeysAreRefused) {
  EXPECT_EQ(ErrorOf(ServiceWithSpec(R"(
  clusterIP: 127.10.0.1
  ports:
    - port: 80
      port: 81
)")),
            "services.yaml: Service default/web: spec.ports[0].port: duplicate key: a field may be "
            "set only once");
}

TEST(DocumentsTest, HostileYamlNeverThrows) {
  // Deep nesting trips yaml-cpp's recursion guard, which throws; aliases, complex keys and tags
  // exercise code paths that throw on misuse. All must come back as statuses.
  const std::string deep = std::string(5000, '[') + std::string(5000, ']');
  EXPECT_FALSE(Parse(deep).ok());
  EXPECT_FALSE(Parse("? [a, b]\n: c\n").ok());
  EXPECT_FALSE(Parse("a: &x {b: *x}\n").ok());
  EXPECT_FALSE(Parse("*undefined\n").ok());
  EXPECT_FALSE(
      Parse(ServiceWithSpec("  clusterIP: !!binary aGVsbG8=\n  ports: [{port: 80}]\n")).ok());
  EXPECT_FALSE(Parse("\t\x01\xff: [").ok());
  absl::StatusOr<ParsedManifests> anchors = Parse(R"(
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  clusterIP: 127.10.0.1
  ports:
    - &p {name: a, port: 80}
    - {name: b, port: 81}
)");
  EXPECT_TRUE(anchors.ok()) << anchors.status();
}

// ---- Files ----------------------------------------------------------------------------------

class ManifestFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sockmesh-parser-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::filesystem::path dir_;
};

TEST_F(ManifestFileTest, ParsesFileAndLabelsMessagesWithItsPath) {
  const std::filesystem::path path = dir_ / "bad.yaml";
  std::ofstream(path) << ServiceWithSpec("  clusterIP: 127.10.0.1\n  ports: [{port: x}]\n");
  absl::StatusOr<ParsedManifests> parsed = ParseManifestFile(path);
  ASSERT_FALSE(parsed.ok());
  EXPECT_THAT(parsed.status().message(),
              HasSubstr(path.string() + ": Service default/web: spec.ports[0].port"));
}

TEST_F(ManifestFileTest, ReadErrors) {
  EXPECT_EQ(ParseManifestFile(dir_ / "missing.yaml").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ReadManifestFile(dir_).status().code(), absl::StatusCode::kFailedPrecondition);
  const std::filesystem::path big = dir_ / "big.yaml";
  std::ofstream(big) << std::string(kMaxManifestFileBytes + 1, '#');
  absl::StatusOr<std::string> read = ReadManifestFile(big);
  EXPECT_EQ(read.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(read.status().message(), HasSubstr("big.yaml: file is larger than"));
}

// yaml-cpp 0.7's LoadAll() never returns on these (a null document per turn, memory growing);
// the parser must refuse them at once. Found by tests/fuzz/manifest_parser_fuzz.
TEST(SyntaxTest, StrayFlowIndicatorIsAnErrorNotAHang) {
  for (std::string_view yaml :
       {std::string_view(",\n"), std::string_view(", \"kind\": \"Service\"}\n"),
        std::string_view("apiVersion: v1\n---\n, x\n")}) {
    absl::StatusOr<ParsedManifests> parsed = Parse(yaml);
    ASSERT_FALSE(parsed.ok()) << yaml;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(parsed.status().message(), HasSubstr("YAML syntax error")) << yaml;
  }
  // Empty documents are still fine.
  EXPECT_TRUE(Parse("---\n---\n...\n").ok());
}

}  // namespace
}  // namespace sockmesh::sources
