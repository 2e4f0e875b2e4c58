// SPDX-License-Identifier: Apache-2.0
// Pod, Namespace and WorkloadEntry parsing: what is read, Kubernetes' defaults, and one rejection
// per rule with the file, the object, the field path and the value.
#include <string>

#include "control_plane/sources/manifest_parser.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/manifest_errors.h"

namespace sockmesh::sources {
namespace {

using model::IpAddress;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::SizeIs;

IpAddress Ip(std::string_view text) { return IpAddress::Parse(text).value(); }

absl::StatusOr<ParsedManifests> Parse(std::string_view yaml) {
  return ParseManifests(yaml, "workloads.yaml");
}

std::string ErrorOf(std::string_view yaml) {
  return testing::ManifestErrorOf(yaml, "workloads.yaml");
}

// ---- Pod ------------------------------------------------------------------------------------

TEST(PodTest, ReadsIdentityFieldsAndIgnoresTheRest) {
  absl::StatusOr<ParsedManifests> parsed = Parse(R"(
apiVersion: v1
kind: Pod
metadata:
  name: web-7d4b9-abcde
  namespace: shop
  labels: {app: web, version: v2}
spec:
  serviceAccountName: web-sa
  nodeName: node-a
  containers: [{name: web, image: nginx}]
status:
  phase: Running
  conditions: [{type: Ready, status: "False"}]
  podIP: 10.1.0.5
  podIPs: [{ip: 10.1.0.5}, {ip: "fd00::5"}]
)");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_THAT(parsed->pods, SizeIs(1));
  const PodManifest& pod = parsed->pods[0];
  EXPECT_EQ(pod.source, "workloads.yaml");
  EXPECT_EQ(pod.namespace_name, "shop");
  EXPECT_EQ(pod.name, "web-7d4b9-abcde");
  EXPECT_EQ(pod.service_account, "web-sa");
  EXPECT_EQ(pod.node_name, "node-a");
  EXPECT_EQ(pod.labels.at("version"), "v2");
  // Readiness does not matter to identity: a not-ready Pod still is who it is.
  EXPECT_THAT(pod.ips, ElementsAre(Ip("10.1.0.5"), Ip("fd00::5")));
}

TEST(PodTest, DefaultsAndPodsWithoutAnAddressOfTheirOwn) {
  absl::StatusOr<ParsedManifests> parsed = Parse(R"(
apiVersion: v1
kind: Pod
metadata: {name: pending}
spec: {}
---
apiVersion: v1
kind: Pod
metadata: {name: old-style}
spec: {serviceAccount: legacy}
status: {podIP: 10.1.0.6}
---
apiVersion: v1
kind: Pod
metadata: {name: done}
spec: {}
status: {phase: Succeeded, podIP: 10.1.0.7}
---
apiVersion: v1
kind: Pod
metadata: {name: host}
spec: {hostNetwork: true}
status: {podIP: 192.168.1.10}
)");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_THAT(parsed->pods, SizeIs(4));
  EXPECT_EQ(parsed->pods[0].namespace_name, "default");
  EXPECT_EQ(parsed->pods[0].service_account, "default");
  EXPECT_THAT(parsed->pods[0].ips, IsEmpty());
  EXPECT_EQ(parsed->pods[1].service_account, "legacy");
  EXPECT_THAT(parsed->pods[1].ips, ElementsAre(Ip("10.1.0.6")));
  EXPECT_THAT(parsed->pods[2].ips, IsEmpty());  // ended: its IP may belong to a new Pod
  EXPECT_THAT(parsed->pods[3].ips, IsEmpty());  // the node's address, not the Pod's
}

TEST(PodErrorTest, EachRuleNamesFieldAndValue) {
  EXPECT_EQ(ErrorOf(R"(
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop}
spec: {serviceAccountName: Web_SA}
)"),
            "workloads.yaml: Pod shop/web: spec.serviceAccountName: invalid value \"Web_SA\": must "
            "be a DNS subdomain (lowercase letters, digits, '-' and '.', at most 253 characters)");
  EXPECT_EQ(ErrorOf(R"(
apiVersion: v1
kind: Pod
metadata: {name: web}
spec: {}
status: {podIP: 10.1.0.300}
)"),
            "workloads.yaml: Pod default/web: status.podIP: invalid value \"10.1.0.300\": must be "
            "an IPv4 or IPv6 address");
  EXPECT_EQ(ErrorOf(R"(
apiVersion: v1
kind: Pod
metadata: {name: web}
spec: {}
status: {podIP: 10.1.0.5, podIPs: [{ip: 10.1.0.6}]}
)"),
            "workloads.yaml: Pod default/web: status.podIPs[0].ip: invalid value \"10.1.0.6\": "
            "must equal status.podIP \"10.1.0.5\"");
  EXPECT_EQ(ErrorOf(R"(
apiVersion: v1
kind: Pod
metadata: {name: web}
spec: {}
status: {podIPs: [{ip: 10.1.0.5}, {ip: 10.1.0.6}]}
)"),
            "workloads.yaml: Pod default/web: status.podIPs[1].ip: invalid value \"10.1.0.6\": "
            "must be of another IP family than the address before it");
  EXPECT_EQ(ErrorOf(R"(
apiVersion: v1
kind: Pod
metadata: {name: web}
spec: [x]
)"),
            "workloads.yaml: Pod default/web: spec: invalid value [x]: must be a map");
  EXPECT_EQ(ErrorOf(R"(
apiVersion: v1
kind: Pod
metadata: {name: Web}
spec: {}
)"),
            "workloads.yaml: document 1 (Pod): metadata.name: invalid value \"Web\": must be a "
            "DNS subdomain (lowercase letters, digits, '-' and '.', at most 253 characters)");
  EXPECT_EQ(ErrorOf(R"(
apiVersion: v1
kind: Pod
metadata: {name: web}
spec: {nodeName: [a]}
)"),
            "workloads.yaml: Pod default/web: spec.nodeName: invalid value [a]: must be a string");
}

// ---- WorkloadEntry --------------------------------------------------------------------------

TEST(WorkloadEntryTest, AddressesLabelsAndServiceAccount) {
  absl::StatusOr<ParsedManifests> parsed = Parse(R"(
apiVersion: sockmesh.io/v1alpha1
kind: WorkloadEntry
metadata: {name: vm-1, namespace: legacy}
spec:
  address: 10.2.0.1
  labels: {app: billing}
  serviceAccount: billing
---
apiVersion: sockmesh.io/v1alpha1
kind: WorkloadEntry
metadata: {name: dual, namespace: legacy}
spec: {addresses: ["fd00::1", 10.2.0.2]}
---
apiVersion: sockmesh.io/v1alpha1
kind: WorkloadEntry
metadata: {name: local, namespace: demo}
spec: {}
)");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_THAT(parsed->workload_entries, SizeIs(3));
  const WorkloadEntryManifest& vm = parsed->workload_entries[0];
  EXPECT_EQ(vm.namespace_name, "legacy");
  EXPECT_EQ(vm.service_account, "billing");
  EXPECT_EQ(vm.labels.at("app"), "billing");
  EXPECT_THAT(vm.ips, ElementsAre(Ip("10.2.0.1")));
  EXPECT_THAT(parsed->workload_entries[1].ips, ElementsAre(Ip("10.2.0.2"), Ip("fd00::1")));
  EXPECT_EQ(parsed->workload_entries[1].service_account, "default");
  EXPECT_THAT(parsed->workload_entries[2].ips, IsEmpty());  // local: known by its cgroup
}

TEST(WorkloadEntryErrorTest, EachRuleNamesFieldAndValue) {
  EXPECT_EQ(ErrorOf(R"(
apiVersion: sockmesh.io/v1alpha1
kind: WorkloadEntry
metadata: {name: vm, namespace: legacy}
spec: {address: vm.example.com}
)"),
            "workloads.yaml: WorkloadEntry legacy/vm: spec.address: invalid value "
            "\"vm.example.com\": must be an IPv4 or IPv6 address (host names are not supported)");
  EXPECT_EQ(ErrorOf(R"(
apiVersion: sockmesh.io/v1alpha1
kind: WorkloadEntry
metadata: {name: vm, namespace: legacy}
spec: {address: 10.2.0.1, addresses: [10.2.0.1]}
)"),
            "workloads.yaml: WorkloadEntry legacy/vm: spec.addresses: invalid value [10.2.0.1]: "
            "set spec.address or spec.addresses, not both");
  EXPECT_EQ(ErrorOf(R"(
apiVersion: sockmesh.io/v1alpha1
kind: WorkloadEntry
metadata: {name: vm, namespace: legacy}
spec: {address: 0.0.0.0}
)"),
            "workloads.yaml: WorkloadEntry legacy/vm: spec.address: invalid value \"0.0.0.0\": "
            "must not be the unspecified address");
  EXPECT_EQ(ErrorOf(R"(
apiVersion: sockmesh.io/v1alpha1
kind: WorkloadEntry
metadata: {name: vm, namespace: legacy}
spec: {serviceAccount: "a b"}
)"),
            "workloads.yaml: WorkloadEntry legacy/vm: spec.serviceAccount: invalid value "
            "\"a b\": must be a DNS subdomain (lowercase letters, digits, '-' and '.', at most 253 "
            "characters)");
  EXPECT_EQ(ErrorOf(R"(
apiVersion: sockmesh.io/v1alpha1
kind: WorkloadEntry
metadata: {name: vm, namespace: legacy}
spec: {labels: {app: [x]}}
)"),
            "workloads.yaml: WorkloadEntry legacy/vm: spec.labels[app]: invalid value [x]: must be "
            "a string");
  // The name is a cgroup directory for a local workload: a DNS label, no dots.
  EXPECT_EQ(ErrorOf(R"(
apiVersion: sockmesh.io/v1alpha1
kind: WorkloadEntry
metadata: {name: vm.1, namespace: legacy}
spec: {}
)"),
            "workloads.yaml: document 1 (WorkloadEntry): metadata.name: invalid value \"vm.1\": "
            "must be a DNS label (lowercase letters, digits and '-', at most 63 characters)");
  EXPECT_EQ(ErrorOf(R"(
apiVersion: sockmesh.io/v1alpha1
kind: WorkloadEntry
metadata: {name: vm}
spec: {addresses: [10.0.0.1, 10.0.0.2]}
)"),
            "workloads.yaml: WorkloadEntry default/vm: spec.addresses[1]: invalid value "
            "\"10.0.0.2\": must be of another IP family than the address before it");
}

// ---- Namespace ------------------------------------------------------------------------------

TEST(NamespaceTest, NameAndLabels) {
  absl::StatusOr<ParsedManifests> parsed = Parse(R"(
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {team: a}}
)");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_THAT(parsed->namespaces, SizeIs(1));
  EXPECT_EQ(parsed->namespaces[0].name, "shop");
  EXPECT_EQ(parsed->namespaces[0].labels.at("team"), "a");
}

TEST(NamespaceErrorTest, EachRuleNamesFieldAndValue) {
  EXPECT_EQ(ErrorOf(R"(
apiVersion: v1
kind: Namespace
metadata: {name: Shop}
)"),
            "workloads.yaml: document 1 (Namespace): metadata.name: invalid value \"Shop\": must "
            "be a DNS label (lowercase letters, digits and '-', at most 63 characters)");
  EXPECT_EQ(ErrorOf(R"(
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: [a]}
)"),
            "workloads.yaml: Namespace shop: metadata.labels: invalid value [a]: must be a map");
}

}  // namespace
}  // namespace sockmesh::sources
