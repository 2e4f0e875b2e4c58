// SPDX-License-Identifier: Apache-2.0
// sockmesh.io/v1alpha1 TrafficPolicy: parsing (every refusal names the field and the value) and
// compiling into the Service entries (algorithm, limits, outlier detection, subset weights).
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "control_plane/sources/desired_state_builder.h"
#include "control_plane/sources/manifest_parser.h"
#include "control_plane/sources/traffic_policy_compiler.h"
#include "control_plane/sources/traffic_policy_parser.h"
#include "control_plane/sources/workload_builder.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sockmesh::sources {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::SizeIs;

// Service web (127.10.0.1:80) with four backends: two Pods labelled v1, one v2, one unlabelled.
constexpr char kCluster[] = R"(
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop, annotations: {sockmesh.io/lb-algorithm: maglev}}
spec:
  clusterIP: 127.10.0.1
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, namespace: shop, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
endpoints:
- addresses: [10.0.0.1]
- addresses: [10.0.0.2]
- addresses: [10.0.0.3]
- addresses: [10.0.0.4]
ports: [{port: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: web-a, namespace: shop, labels: {app: web, version: v1}}
status: {podIP: 10.0.0.1}
---
apiVersion: v1
kind: Pod
metadata: {name: web-b, namespace: shop, labels: {app: web, version: v1}}
status: {podIP: 10.0.0.2}
---
apiVersion: v1
kind: Pod
metadata: {name: web-c, namespace: shop, labels: {app: web, version: v2}}
status: {podIP: 10.0.0.3}
)";

constexpr char kCanary[] = R"(
apiVersion: sockmesh.io/v1alpha1
kind: TrafficPolicy
metadata: {name: web-canary, namespace: shop}
spec:
  host: web.shop.svc.cluster.local
  trafficPolicy:
    loadBalancer: {simple: ROUND_ROBIN}
    connectionPool: {tcp: {maxConnections: 100}}
    outlierDetection: {consecutiveConnectFailures: 5, baseEjectionTime: 1.5s, maxEjectionPercent: 50}
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
  split:
  - {subset: v1, weight: 90}
  - {subset: v2, weight: 10}
)";

absl::StatusOr<model::DesiredState> Build(const std::string& yaml) {
  absl::StatusOr<ParsedManifests> parsed = ParseManifests(yaml, "test.yaml");
  if (!parsed.ok()) return parsed.status();
  return BuildDesiredState(*parsed, model::DesiredState());
}

TEST(TrafficPolicyParserTest, ParsesTheCanaryExample) {
  absl::StatusOr<ParsedManifests> parsed = ParseManifests(kCanary, "test.yaml");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_THAT(parsed->traffic_policies, SizeIs(1));
  const TrafficPolicyManifest& p = parsed->traffic_policies[0];
  EXPECT_EQ(p.host_namespace, "shop");
  EXPECT_EQ(p.host_service, "web");
  EXPECT_EQ(p.algorithm, model::LbAlgorithm::kRandom);
  EXPECT_EQ(p.max_connections, 100u);
  ASSERT_TRUE(p.outlier.has_value());
  EXPECT_EQ(p.outlier->consecutive_connect_failures, 5u);
  EXPECT_EQ(p.outlier->base_ejection_ms, 1500u);
  EXPECT_EQ(p.outlier->max_ejection_percent, 50u);
  EXPECT_THAT(p.split, ElementsAre(TrafficPolicySplit{"v1", 90}, TrafficPolicySplit{"v2", 10}));
}

TEST(TrafficPolicyParserTest, AlgorithmsMapToTheDatapaths) {
  auto algo = [](const std::string& lb) -> std::optional<model::LbAlgorithm> {
    absl::StatusOr<ParsedManifests> parsed = ParseManifests(
        "apiVersion: sockmesh.io/v1alpha1\nkind: TrafficPolicy\nmetadata: {name: p}\nspec:\n"
        "  host: web\n  trafficPolicy: {loadBalancer: " +
            lb + "}\n",
        "t.yaml");
    if (!parsed.ok()) return std::nullopt;
    return parsed->traffic_policies[0].algorithm;
  };
  EXPECT_EQ(algo("{simple: RANDOM}"), model::LbAlgorithm::kRandom);
  EXPECT_EQ(algo("{simple: ROUND_ROBIN}"), model::LbAlgorithm::kRandom);
  EXPECT_EQ(algo("{simple: LEAST_CONN}"), model::LbAlgorithm::kLeastConnections);
  EXPECT_EQ(algo("{simple: LEAST_REQUEST}"), model::LbAlgorithm::kLeastConnections);
  EXPECT_EQ(algo("{consistentHash: {useSourceIp: true}}"), model::LbAlgorithm::kMaglev);
  EXPECT_EQ(algo("{consistentHash: {httpHeaderName: x-user}}"), std::nullopt);
  EXPECT_EQ(algo("{simple: PASSTHROUGH}"), std::nullopt);
}

TEST(TrafficPolicyParserTest, DurationsAsIstioWritesThem) {
  EXPECT_EQ(ParseDurationMs("30s"), 30000u);
  EXPECT_EQ(ParseDurationMs("500ms"), 500u);
  EXPECT_EQ(ParseDurationMs("1.5s"), 1500u);
  EXPECT_EQ(ParseDurationMs("2m"), 120000u);
  EXPECT_EQ(ParseDurationMs("1h"), 3600000u);
  EXPECT_EQ(ParseDurationMs("0s"), std::nullopt);
  EXPECT_EQ(ParseDurationMs("30"), std::nullopt);
  EXPECT_EQ(ParseDurationMs("-1s"), std::nullopt);
  EXPECT_EQ(ParseDurationMs("1.s"), std::nullopt);
}

struct InvalidCase {
  std::string spec;   // replaces the canary's spec body
  std::string field;  // the path the error must name
  std::string value;  // and the value it must quote ("" = none)
};

TEST(TrafficPolicyParserTest, RefusesWhatItCannotHonourNamingFieldAndValue) {
  const std::vector<InvalidCase> cases = {
      {"host: Web_1", "spec.host", "\"Web_1\""},
      {"host: web.shop.svc.other", "spec.host", "\"web.shop.svc.other\""},
      {"host: web\nfoo: 1", "spec.foo", ""},
      {"host: web\nworkloadSelector: {}", "spec.workloadSelector", ""},
      {"host: web\ntrafficPolicy: {loadBalancer: {simple: FASTEST}}",
       "spec.trafficPolicy.loadBalancer.simple", "\"FASTEST\""},
      {"host: web\ntrafficPolicy: {loadBalancer: {consistentHash: {httpCookie: {name: a}}}}",
       "spec.trafficPolicy.loadBalancer.consistentHash.httpCookie", ""},
      {"host: web\ntrafficPolicy: {connectionPool: {tcp: {maxConnections: 70000}}}",
       "spec.trafficPolicy.connectionPool.tcp.maxConnections", "\"70000\""},
      {"host: web\ntrafficPolicy: {connectionPool: {http: {http1MaxPendingRequests: 1}}}",
       "spec.trafficPolicy.connectionPool.http", ""},
      {"host: web\ntrafficPolicy: {outlierDetection: {consecutive5xxErrors: 5}}",
       "spec.trafficPolicy.outlierDetection.consecutive5xxErrors", ""},
      {"host: web\ntrafficPolicy: {outlierDetection: {consecutiveConnectFailures: 0}}",
       "spec.trafficPolicy.outlierDetection.consecutiveConnectFailures", "\"0\""},
      {"host: web\ntrafficPolicy: {outlierDetection: {consecutiveConnectFailures: 1, "
       "baseEjectionTime: soon}}",
       "spec.trafficPolicy.outlierDetection.baseEjectionTime", "\"soon\""},
      {"host: web\ntrafficPolicy: {outlierDetection: {consecutiveConnectFailures: 1, "
       "maxEjectionPercent: 101}}",
       "spec.trafficPolicy.outlierDetection.maxEjectionPercent", "\"101\""},
      {"host: web\nsubsets: [{name: v1}]", "spec.subsets[0].labels", ""},
      {"host: web\nsubsets: [{name: v1, labels: {a: b}}, {name: v1, labels: {a: c}}]",
       "spec.subsets[1].name", "\"v1\""},
      {"host: web\nsubsets: [{name: v1, labels: {a: b}}]\nsplit: [{subset: v3, weight: 100}]",
       "spec.split[0].subset", "\"v3\""},
      {"host: web\nsubsets: [{name: v1, labels: {a: b}}]\nsplit: [{subset: v1, weight: 90}]",
       "spec.split", "90"},
  };
  for (const InvalidCase& c : cases) {
    std::string spec;
    for (absl::string_view line : absl::StrSplit(c.spec, '\n')) {
      absl::StrAppend(&spec, "  ", line, "\n");
    }
    absl::StatusOr<ParsedManifests> parsed = ParseManifests(
        "apiVersion: sockmesh.io/v1alpha1\nkind: TrafficPolicy\nmetadata: {name: p, namespace: "
        "shop}\nspec:\n" +
            spec,
        "bad.yaml");
    ASSERT_FALSE(parsed.ok()) << c.spec;
    EXPECT_THAT(parsed.status().message(), AllOf(HasSubstr("bad.yaml: TrafficPolicy shop/p: "),
                                                 HasSubstr(c.field + ": "), HasSubstr(c.value)))
        << c.spec;
  }
}

TEST(TrafficPolicyCompilerTest, OverridesAnnotationsAndSpreadsSubsetWeights) {
  absl::StatusOr<model::DesiredState> state = Build(std::string(kCluster) + "---" + kCanary);
  ASSERT_TRUE(state.ok()) << state.status();
  ASSERT_THAT(*state, SizeIs(1));
  const model::ServiceEntry& e = state->begin()->second;
  EXPECT_EQ(e.algorithm, model::LbAlgorithm::kRandom);  // the annotation said maglev
  EXPECT_EQ(e.max_connections_per_backend, 100u);
  EXPECT_EQ(e.outlier.consecutive_connect_failures, 5u);
  EXPECT_EQ(e.traffic_policy, "shop/web-canary");
  // v1's 90 over two backends, v2's 10 on one; the unlabelled 10.0.0.4 is in no subset.
  std::vector<std::pair<std::string, uint32_t>> weights;
  for (const model::Backend& b : e.backends) weights.emplace_back(b.address.ToString(), b.weight);
  EXPECT_THAT(weights, ElementsAre(std::pair<std::string, uint32_t>{"10.0.0.1", 45 * 600},
                                   std::pair<std::string, uint32_t>{"10.0.0.2", 45 * 600},
                                   std::pair<std::string, uint32_t>{"10.0.0.3", 10 * 600}));
}

TEST(TrafficPolicyCompilerTest, ConditionsSayWhyAPolicyDoesNotApply) {
  absl::StatusOr<ParsedManifests> parsed =
      ParseManifests(std::string(kCluster) + "---" + kCanary + R"(---
apiVersion: sockmesh.io/v1alpha1
kind: TrafficPolicy
metadata: {name: web-second, namespace: shop}
spec: {host: web}
---
apiVersion: sockmesh.io/v1alpha1
kind: TrafficPolicy
metadata: {name: nowhere, namespace: shop}
spec: {host: missing}
---
apiVersion: sockmesh.io/v1alpha1
kind: TrafficPolicy
metadata: {name: empty-subset, namespace: other}
spec:
  host: web.shop
  subsets: [{name: v9, labels: {version: v9}}]
  split: [{subset: v9, weight: 100}]
)",
                     "t.yaml");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  absl::StatusOr<model::WorkloadState> workloads = BuildWorkloads(*parsed, {});
  ASSERT_TRUE(workloads.ok());
  absl::StatusOr<model::DesiredState> state = BuildDesiredState(parsed->services, parsed->slices);
  ASSERT_TRUE(state.ok());
  state->workloads = *workloads;
  absl::StatusOr<std::vector<TrafficPolicyStatus>> statuses =
      ApplyTrafficPolicies(parsed->traffic_policies, *state);
  ASSERT_TRUE(statuses.ok()) << statuses.status();
  ASSERT_THAT(*statuses, SizeIs(4));
  // Sorted by namespace/name: other/empty-subset first; it claimed shop/web first, so the shop
  // policies for web conflict.
  EXPECT_EQ((*statuses)[0].name, "empty-subset");
  EXPECT_EQ((*statuses)[0].conditions[1].reason, "SubsetEmpty");
  EXPECT_FALSE((*statuses)[0].conditions[1].status);
  EXPECT_EQ((*statuses)[1].name, "nowhere");
  EXPECT_EQ((*statuses)[1].conditions[1].reason, "HostNotFound");
  EXPECT_EQ((*statuses)[2].name, "web-canary");
  EXPECT_EQ((*statuses)[2].conditions[0].reason, "Conflicted");
  EXPECT_FALSE((*statuses)[2].conditions[0].status);
  // The split selecting nothing leaves the backends as the Service had them.
  EXPECT_THAT(state->begin()->second.backends, SizeIs(4));
}

TEST(TrafficPolicyCompilerTest, APolicyDefinedTwiceIsAnError) {
  absl::StatusOr<model::DesiredState> state =
      Build(std::string(kCluster) + "---" + kCanary + "---" + kCanary);
  ASSERT_FALSE(state.ok());
  EXPECT_THAT(state.status().message(),
              HasSubstr("TrafficPolicy shop/web-canary is defined twice"));
}

}  // namespace
}  // namespace sockmesh::sources
