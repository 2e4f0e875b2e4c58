// SPDX-License-Identifier: Apache-2.0
// The Kubernetes API source against a local HTTPS server (tests/support/fake_kube_apiserver.py)
// replaying list and watch responses in the API's JSON shape: no API server runs on these
// machines. Also the in-cluster configuration and the object cache on their own.
#include "control_plane/sources/kubernetes/kubernetes_source.h"

#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "control_plane/sources/kubernetes/in_cluster_config.h"
#include "control_plane/sources/kubernetes/kube_client.h"
#include "control_plane/sources/kubernetes/object_cache.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/support/fake_kube_apiserver.h"

namespace sockmesh::sources::kubernetes {
namespace {

using ::nlohmann::json;
using ::sockmesh::testing::BookmarkJson;
using ::sockmesh::testing::EventJson;
using ::sockmesh::testing::FakeKubeApiServer;
using ::sockmesh::testing::GoneJson;
using ::sockmesh::testing::ListJson;
using ::sockmesh::testing::ServiceJson;
using ::sockmesh::testing::SliceJson;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr char kServices[] = "/api/v1/services";
constexpr char kSlices[] = "/apis/discovery.k8s.io/v1/endpointslices";
constexpr char kPods[] = "/api/v1/pods";
constexpr char kNamespaces[] = "/api/v1/namespaces";
constexpr char kTrafficPolicies[] = "/apis/sockmesh.io/v1alpha1/trafficpolicies";
// Every wait in these tests is bounded by this; ctest's 120 s bounds the whole test.
constexpr absl::Duration kWait = absl::Seconds(15);

// "10.96.0.10:80/TCP -> 10.0.0.1:8080,10.0.0.2:8080" per entry, in frontend order.
std::vector<std::string> Describe(const model::DesiredState& state) {
  std::vector<std::string> out;
  for (const auto& [frontend, entry] : state) {
    std::vector<std::string> backends;
    for (const model::Backend& b : entry.backends) {
      backends.push_back(absl::StrCat(b.address.ToString(), ":", b.port));
    }
    out.push_back(absl::StrCat(frontend.ToString(), " -> ", absl::StrJoin(backends, ",")));
  }
  return out;
}

json Svc(const std::string& name, const std::string& ip, int port, const std::string& rv) {
  return ServiceJson("default", name, ip, port, 8080, rv);
}
json Slice(const std::string& service, const std::vector<std::string>& addresses,
           const std::string& rv) {
  return SliceJson("default", service + "-abc12", service, addresses, 8080, rv);
}
json ServiceList(const std::string& rv, std::vector<json> items) {
  return ListJson("ServiceList", "v1", rv, std::move(items));
}
json SliceList(const std::string& rv, std::vector<json> items) {
  return ListJson("EndpointSliceList", "discovery.k8s.io/v1", rv, std::move(items));
}
json Watch(std::vector<json> events, const std::string& end = "hold") {
  json steps = json::array();
  for (json& e : events) steps.push_back({{"event", std::move(e)}});
  return {{"steps", steps}, {"end", end}};
}

// A cluster with Service a (10.96.0.10:80 -> 10.0.0.1, 10.0.0.2), one Pod and one Namespace; the
// caller adds watches or replaces lists.
json BaseScript() {
  json script;
  script[kServices]["lists"] = {{{"body", ServiceList("100", {Svc("a", "10.96.0.10", 80, "90")})}}};
  script[kServices]["watches"] = json::array();
  script[kSlices]["lists"] = {
      {{"body", SliceList("100", {Slice("a", {"10.0.0.1", "10.0.0.2"}, "95")})}}};
  script[kSlices]["watches"] = json::array();
  script[kPods]["lists"] = {
      {{"body", ListJson("PodList", "v1", "100",
                         {{{"metadata", {{"name", "a-1"}, {"namespace", "default"}}},
                           {"status", {{"podIP", "10.0.0.1"}}}}})}}};
  script[kNamespaces]["lists"] = {
      {{"body", ListJson("NamespaceList", "v1", "100",
                         {{{"metadata", {{"name", "default"}, {"uid", "ns-1"}}}}})}}};
  script[kTrafficPolicies]["lists"] = {
      {{"body", ListJson("TrafficPolicyList", "sockmesh.io/v1alpha1", "100", {})}}};
  return script;
}

KubernetesSourceOptions FastOptions() {
  KubernetesSourceOptions options;
  options.client.connect_timeout = absl::Seconds(5);
  options.client.request_timeout = absl::Seconds(10);
  options.list_watch.initial_backoff = absl::Milliseconds(20);
  options.list_watch.max_backoff = absl::Milliseconds(200);
  options.list_watch.min_watch_timeout = absl::Seconds(60);
  return options;
}

std::unique_ptr<KubernetesSource> StartSource(const FakeKubeApiServer& server,
                                              const std::filesystem::path& ca) {
  absl::StatusOr<KubeApiConfig> config = ExplicitConfig(server.url(), server.token_file(), ca);
  EXPECT_TRUE(config.ok()) << config.status();
  if (!config.ok()) return nullptr;
  absl::StatusOr<std::unique_ptr<KubernetesSource>> source =
      KubernetesSource::Start(*config, FastOptions());
  EXPECT_TRUE(source.ok()) << source.status();
  return source.ok() ? *std::move(source) : nullptr;
}

// Waits (bounded) for a published snapshot that satisfies `done`; returns the last one seen.
Snapshot WaitForSnapshot(const ObjectCache& cache,
                         const std::function<bool(const Snapshot&)>& done) {
  const absl::Time deadline = absl::Now() + kWait;
  Snapshot s = cache.Get();
  while (!(s.version > 0 && done(s)) && absl::Now() < deadline) {
    s = cache.WaitForChange(s.version, deadline - absl::Now());
  }
  return s;
}

// Polls `done` every 10 ms until true or kWait passed.
bool Eventually(const std::function<bool()>& done) {
  const absl::Time deadline = absl::Now() + kWait;
  while (!done()) {
    if (absl::Now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

std::vector<json> RequestsTo(const FakeKubeApiServer& server, const std::string& path, bool watch) {
  std::vector<json> out;
  for (json& r : server.Requests()) {
    if (r["path"] != path) continue;
    if (r["query"].contains("watch") == watch) out.push_back(std::move(r));
  }
  return out;
}

std::unique_ptr<FakeKubeApiServer> StartServer(const json& script) {
  absl::StatusOr<std::unique_ptr<FakeKubeApiServer>> server = FakeKubeApiServer::Start(script);
  EXPECT_TRUE(server.ok()) << server.status();
  return server.ok() ? *std::move(server) : nullptr;
}

json Pod(const std::string& name, const std::string& ip, const std::string& version) {
  return {
      {"apiVersion", "v1"},
      {"kind", "Pod"},
      {"metadata", {{"name", name}, {"namespace", "default"}, {"labels", {{"version", version}}}}},
      {"status", {{"podIP", ip}}}};
}

// A TrafficPolicy for Service "a": least connections, 5 connections per backend, and a 90/10
// split between the Pods labelled version v1 and v2.
json CanaryPolicy(const std::string& name, const std::string& rv) {
  json policy = json::parse(R"({"apiVersion": "sockmesh.io/v1alpha1", "kind": "TrafficPolicy",
    "metadata": {"namespace": "default"},
    "spec": {"host": "a",
             "trafficPolicy": {"loadBalancer": {"simple": "LEAST_CONN"},
                               "connectionPool": {"tcp": {"maxConnections": 5}},
                               "outlierDetection": {"consecutiveConnectFailures": 3,
                                                    "baseEjectionTime": "2s"}},
             "subsets": [{"name": "v1", "labels": {"version": "v1"}},
                         {"name": "v2", "labels": {"version": "v2"}}],
             "split": [{"subset": "v1", "weight": 90}, {"subset": "v2", "weight": 10}]}})");
  policy["metadata"]["name"] = name;
  policy["metadata"]["resourceVersion"] = rv;
  return policy;
}

// ---------------------------------------------------------------------------------------------
// In-cluster configuration.

class InClusterConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           absl::StrCat("sa-", ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    std::ofstream(dir_ / "token") << "  abc.def.ghi\n";
    std::ofstream(dir_ / "ca.crt") << "-----BEGIN CERTIFICATE-----\n";
  }
  void TearDown() override {
    unsetenv("KUBERNETES_SERVICE_HOST");
    unsetenv("KUBERNETES_SERVICE_PORT");
    std::filesystem::remove_all(dir_);
  }
  std::filesystem::path dir_;
};

TEST_F(InClusterConfigTest, ReadsEnvironmentAndServiceAccount) {
  setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
  setenv("KUBERNETES_SERVICE_PORT", "443", 1);
  absl::StatusOr<KubeApiConfig> config = InClusterConfig(dir_);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->server, "https://10.96.0.1:443");
  EXPECT_EQ(config->ca_file, dir_ / "ca.crt");
  EXPECT_EQ(config->token_file, dir_ / "token");
  absl::StatusOr<std::string> token = ReadToken(*config);
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(*token, "abc.def.ghi");  // whitespace around the mounted token is not part of it
}

TEST_F(InClusterConfigTest, BracketsAnIpv6Host) {
  setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
  setenv("KUBERNETES_SERVICE_PORT", "6443", 1);
  absl::StatusOr<KubeApiConfig> config = InClusterConfig(dir_);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->server, "https://[fd00::1]:6443");
}

TEST_F(InClusterConfigTest, RefusesOutsideAPodAndNamesMissingFiles) {
  absl::StatusOr<KubeApiConfig> config = InClusterConfig(dir_);
  EXPECT_EQ(config.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(config.status().message(), HasSubstr("KUBERNETES_SERVICE_HOST"));

  setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
  setenv("KUBERNETES_SERVICE_PORT", "443", 1);
  std::filesystem::remove(dir_ / "token");
  config = InClusterConfig(dir_);
  EXPECT_EQ(config.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(config.status().message(), HasSubstr((dir_ / "token").string()));
}

TEST_F(InClusterConfigTest, ExplicitConfigNeedsHttpsAndCa) {
  EXPECT_EQ(ExplicitConfig("http://127.0.0.1:6443", "", dir_ / "ca.crt").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ExplicitConfig("https://127.0.0.1:6443", "", "").status().code(),
            absl::StatusCode::kInvalidArgument);
  absl::StatusOr<KubeApiConfig> config =
      ExplicitConfig("https://127.0.0.1:6443/", "", dir_ / "ca.crt");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->server, "https://127.0.0.1:6443");
  EXPECT_EQ(*ReadToken(*config), "");
}

// ---------------------------------------------------------------------------------------------
// The object cache alone.

// Pods, Namespaces and TrafficPolicies listed (empty), so publishing waits only for what a test
// lists next.
void ListNoWorkloads(ObjectCache& cache) {
  cache.Replace(ObjectKind::kPod, {});
  cache.Replace(ObjectKind::kNamespace, {});
  cache.Replace(ObjectKind::kAuthorizationPolicy, {});
  cache.Replace(ObjectKind::kTrafficPolicy, {});
}

TEST(ObjectCacheTest, PublishesOnlyOnceEveryKindIsListed) {
  ObjectCache cache;
  cache.Replace(ObjectKind::kPod, {});
  cache.Replace(ObjectKind::kService, {Svc("a", "10.96.0.10", 80, "1")});
  cache.Replace(ObjectKind::kEndpointSlice, {Slice("a", {"10.0.0.1"}, "2")});
  cache.Replace(ObjectKind::kNamespace, {});
  EXPECT_EQ(cache.Get().version, 0u);
  cache.Replace(ObjectKind::kAuthorizationPolicy, {});
  EXPECT_EQ(cache.Get().version, 0u);  // TrafficPolicies not listed yet
  cache.Replace(ObjectKind::kTrafficPolicy, {});
  EXPECT_EQ(cache.Get().version, 1u);
}

TEST(ObjectCacheTest, PublishesOnlyOnceServicesAndSlicesAreListed) {
  ObjectCache cache;
  ListNoWorkloads(cache);
  cache.Replace(ObjectKind::kService, {Svc("a", "10.96.0.10", 80, "1")});
  EXPECT_EQ(cache.Get().version, 0u);
  cache.Replace(ObjectKind::kEndpointSlice, {Slice("a", {"10.0.0.1"}, "2")});
  const Snapshot s = cache.Get();
  EXPECT_EQ(s.version, 1u);
  EXPECT_THAT(Describe(s.state), ElementsAre("10.96.0.10:80/TCP -> 10.0.0.1:8080"));
  EXPECT_THAT(s.errors, IsEmpty());
}

// The Kubernetes API source reads Services through the manifest parser, so the load-balancing
// annotations mean the same there.
TEST(ObjectCacheTest, LeastConnectionsAndConnectionLimitAnnotationsReachTheState) {
  ObjectCache cache;
  json svc = Svc("a", "10.96.0.10", 80, "1");
  svc["metadata"]["annotations"]["sockmesh.io/lb-algorithm"] = "least-connections";
  svc["metadata"]["annotations"]["sockmesh.io/max-connections-per-backend"] = "50";
  json bad = Svc("b", "10.96.0.11", 80, "3");
  bad["metadata"]["annotations"]["sockmesh.io/max-connections-per-backend"] = "many";
  ListNoWorkloads(cache);
  cache.Replace(ObjectKind::kService, {svc, bad});
  cache.Replace(ObjectKind::kEndpointSlice, {Slice("a", {"10.0.0.1"}, "2")});
  const Snapshot s = cache.Get();
  ASSERT_EQ(s.state.size(), 1u);
  EXPECT_EQ(s.state.begin()->second.algorithm, model::LbAlgorithm::kLeastConnections);
  EXPECT_EQ(s.state.begin()->second.max_connections_per_backend, 50u);
  ASSERT_THAT(s.errors, SizeIs(1));
  EXPECT_THAT(s.errors[0],
              AllOf(HasSubstr("Service default/b"),
                    HasSubstr("sockmesh.io/max-connections-per-backend"), HasSubstr("\"many\"")));
}

TEST(ObjectCacheTest, InvalidObjectIsRejectedAloneAndLastGoodStays) {
  ObjectCache cache;
  ListNoWorkloads(cache);
  json bad = Svc("b", "10.96.0.11", 80, "3");
  bad["metadata"]["annotations"]["sockmesh.io/lb-algorithm"] = "bogus";
  cache.Replace(ObjectKind::kService, {Svc("a", "10.96.0.10", 80, "1"), bad});
  cache.Replace(ObjectKind::kEndpointSlice, {Slice("a", {"10.0.0.1"}, "2")});
  Snapshot s = cache.Get();
  EXPECT_THAT(Describe(s.state), ElementsAre("10.96.0.10:80/TCP -> 10.0.0.1:8080"));
  ASSERT_THAT(s.errors, SizeIs(1));
  EXPECT_THAT(s.errors[0], AllOf(HasSubstr("kubernetes-api: Service default/b: "),
                                 HasSubstr("sockmesh.io/lb-algorithm"), HasSubstr("\"bogus\"")));

  // A valid Service that turns invalid keeps its last good form in force, with the error shown.
  json a_bad = Svc("a", "10.96.0.10", 80, "4");
  a_bad["spec"]["ports"][0]["port"] = 70000;
  cache.Apply(ObjectKind::kService, EventType::kModified, a_bad);
  s = cache.Get();
  EXPECT_THAT(Describe(s.state), ElementsAre("10.96.0.10:80/TCP -> 10.0.0.1:8080"));
  ASSERT_THAT(s.errors, SizeIs(2));
  EXPECT_THAT(s.errors[0],
              AllOf(HasSubstr("Service default/a: spec.ports[0].port"), HasSubstr("70000")));

  // Deleting it removes both the object and its error.
  cache.Apply(ObjectKind::kService, EventType::kDeleted, a_bad);
  s = cache.Get();
  EXPECT_THAT(Describe(s.state), IsEmpty());
  EXPECT_THAT(s.errors, SizeIs(1));
}

TEST(ObjectCacheTest, ConflictingServicesKeepThePreviousState) {
  ObjectCache cache;
  ListNoWorkloads(cache);
  cache.Replace(ObjectKind::kService, {Svc("a", "10.96.0.10", 80, "1")});
  cache.Replace(ObjectKind::kEndpointSlice, {});
  const uint64_t before = cache.Get().version;
  cache.Apply(ObjectKind::kService, EventType::kAdded, Svc("b", "10.96.0.10", 80, "2"));
  const Snapshot s = cache.Get();
  EXPECT_GT(s.version, before);
  EXPECT_THAT(Describe(s.state), ElementsAre("10.96.0.10:80/TCP -> "));
  ASSERT_THAT(s.errors, SizeIs(1));
  EXPECT_THAT(s.errors[0], AllOf(HasSubstr("default/a"), HasSubstr("default/b")));
}

// ---------------------------------------------------------------------------------------------
// List and watch against the local HTTPS server.

TEST(KubernetesSourceTest, InitialListBuildsDesiredStateWithBearerToken) {
  json script = BaseScript();
  auto server = StartServer(script);
  ASSERT_NE(server, nullptr);
  auto source = StartSource(*server, server->ca_file());
  ASSERT_NE(source, nullptr);

  const Snapshot s = WaitForSnapshot(source->cache(), [](const Snapshot&) { return true; });
  EXPECT_EQ(s.version, 1u);
  EXPECT_THAT(Describe(s.state), ElementsAre("10.96.0.10:80/TCP -> 10.0.0.1:8080,10.0.0.2:8080"));
  EXPECT_THAT(s.errors, IsEmpty());
  const model::ServiceEntry& entry = s.state.begin()->second;
  EXPECT_EQ(entry.namespace_name, "default");
  EXPECT_EQ(entry.service_name, "a");
  EXPECT_EQ(entry.port_name, "http");

  // Pods and Namespaces are kept raw, with the kind the list implied.
  ASSERT_TRUE(Eventually([&] {
    return source->cache().Objects(ObjectKind::kPod).size() == 1 &&
           source->cache().Objects(ObjectKind::kNamespace).size() == 1;
  }));
  EXPECT_EQ(source->cache().Objects(ObjectKind::kPod).at("default/a-1")["kind"], "Pod");
  EXPECT_EQ(source->cache().Objects(ObjectKind::kNamespace).at("default")["metadata"]["uid"],
            "ns-1");
  // The Pod is a workload with the default service account's identity.
  const model::Workload& pod = s.state.workloads.workloads.at({"default", "a-1"});
  EXPECT_EQ(pod.principal(), "cluster.local/ns/default/sa/default");
  EXPECT_EQ(pod.ips, std::vector{model::IpAddress::Parse("10.0.0.1").value()});
  EXPECT_EQ(pod.identity, s.state.workloads.identities.at(pod.principal()));
  EXPECT_TRUE(s.state.workloads.namespaces.contains("default"));

  // Every kind is listed, then watched from the list's resourceVersion with bookmarks on.
  ASSERT_TRUE(Eventually([&] {
    for (const char* path : {kServices, kSlices, kPods, kNamespaces, kTrafficPolicies}) {
      if (RequestsTo(*server, path, /*watch=*/true).empty()) return false;
    }
    return true;
  }));
  for (const char* path : {kServices, kSlices, kPods, kNamespaces, kTrafficPolicies}) {
    const std::vector<json> lists = RequestsTo(*server, path, false);
    ASSERT_THAT(lists, SizeIs(1)) << path;
    EXPECT_EQ(lists[0]["query"]["limit"], "500");
    const json watch = RequestsTo(*server, path, true)[0];
    EXPECT_EQ(watch["query"]["resourceVersion"], "100") << path;
    EXPECT_EQ(watch["query"]["allowWatchBookmarks"], "true") << path;
  }
  for (const json& request : server->Requests()) {
    EXPECT_EQ(request["authorization"], absl::StrCat("Bearer ", FakeKubeApiServer::kToken));
  }
}

constexpr char kPolicies[] = "/apis/sockmesh.io/v1alpha1/authorizationpolicies";

json PolicyJson(const std::string& name, json spec, int generation) {
  return {{"metadata", {{"name", name}, {"namespace", "default"}, {"generation", generation}}},
          {"spec", std::move(spec)}};
}

// AuthorizationPolicies are listed and watched like the other kinds, compiled into the state
// (a refused one alone left out), and their conditions are written back to the status
// subresource, once per change.
TEST(KubernetesSourceTest, AuthorizationPoliciesAreCompiledAndTheirStatusWritten) {
  json script = BaseScript();
  const json deny =
      PolicyJson("deny-world",
                 {{"action", "DENY"},
                  {"rules", {{{"from", {{{"source", {{"notNamespaces", {"default"}}}}}}}}}}},
                 2);
  const json l7 =
      PolicyJson("get-only", {{"rules", {{{"to", {{{"operation", {{"methods", {"GET"}}}}}}}}}}}, 1);
  script[kPolicies]["lists"] = {
      {{"body", ListJson("AuthorizationPolicyList", "sockmesh.io/v1alpha1", "100", {deny, l7})}}};
  json removed = l7;
  removed["metadata"]["resourceVersion"] = "101";
  script[kPolicies]["watches"] = {Watch({EventJson("DELETED", removed)})};
  auto server = StartServer(script);
  ASSERT_NE(server, nullptr);
  auto source = StartSource(*server, server->ca_file());
  ASSERT_NE(source, nullptr);

  Snapshot s = WaitForSnapshot(source->cache(),
                               [](const Snapshot& s) { return s.state.policy_status.size() == 2; });
  ASSERT_THAT(s.state.policy_status, SizeIs(2));
  ASSERT_THAT(s.state.policy.policies, SizeIs(1));
  EXPECT_EQ(s.state.policy.policies[0].name, "deny-world");
  ASSERT_THAT(s.state.policy.endpoints, SizeIs(1));  // the Pod default/a-1
  EXPECT_EQ(s.state.policy_status[1].name, "get-only");
  EXPECT_EQ(s.state.policy_status[1].conditions.at(0).reason, "UnsupportedField");

  EXPECT_THAT(source->WritePolicyStatus(s.state.policy_status), IsEmpty());
  EXPECT_THAT(source->WritePolicyStatus(s.state.policy_status), IsEmpty());  // unchanged: no PATCH
  std::vector<json> patches;
  for (const json& r : server->Requests()) {
    if (r["method"] == "PATCH") patches.push_back(r);
  }
  ASSERT_THAT(patches, SizeIs(2));
  EXPECT_EQ(
      patches[0]["path"],
      "/apis/sockmesh.io/v1alpha1/namespaces/default/authorizationpolicies/deny-world/status");
  EXPECT_EQ(patches[0]["content_type"], "application/merge-patch+json");
  const json& accepted = patches[0]["body"]["status"]["conditions"][0];
  EXPECT_EQ(accepted["type"], "Accepted");
  EXPECT_EQ(accepted["status"], "True");
  EXPECT_EQ(accepted["observedGeneration"], 2);
  EXPECT_TRUE(accepted["lastTransitionTime"].is_string());
  const json& refused = patches[1]["body"]["status"]["conditions"][0];
  EXPECT_EQ(patches[1]["path"],
            "/apis/sockmesh.io/v1alpha1/namespaces/default/authorizationpolicies/get-only/status");
  EXPECT_EQ(refused["status"], "False");
  EXPECT_EQ(refused["reason"], "UnsupportedField");
  EXPECT_THAT(refused["message"].get<std::string>(),
              HasSubstr("spec.rules[0].to[0].operation.methods: L7 field not supported"));

  // The watch deletes the refused policy.
  s = WaitForSnapshot(source->cache(),
                      [](const Snapshot& s) { return s.state.policy_status.size() == 1; });
  EXPECT_THAT(s.state.policy_status, SizeIs(1));
}

// A cluster without the CRD (404 on its list) still publishes the other kinds.
TEST(KubernetesSourceTest, MissingAuthorizationPolicyCrdDoesNotBlockTheState) {
  json script = BaseScript();
  script.erase(kPolicies);
  auto server = StartServer(script);
  ASSERT_NE(server, nullptr);
  auto source = StartSource(*server, server->ca_file());
  ASSERT_NE(source, nullptr);
  const Snapshot s = WaitForSnapshot(source->cache(), [](const Snapshot&) { return true; });
  EXPECT_EQ(s.version, 1u);
  EXPECT_THAT(Describe(s.state), SizeIs(1));
  EXPECT_THAT(s.state.policy_status, IsEmpty());
}

TEST(KubernetesSourceTest, WatchEventsAddModifyAndDelete) {
  json script = BaseScript();
  json a_moved = Svc("a", "10.96.0.10", 81, "102");
  script[kServices]["watches"] = {Watch(
      {EventJson("ADDED", Svc("b", "10.96.0.20", 80, "101")), EventJson("MODIFIED", a_moved)})};
  script[kSlices]["watches"] = {
      Watch({EventJson("ADDED", Slice("b", {"10.0.1.1"}, "103")),
             EventJson("DELETED", Slice("a", {"10.0.0.1", "10.0.0.2"}, "104"))})};
  auto server = StartServer(script);
  ASSERT_NE(server, nullptr);
  auto source = StartSource(*server, server->ca_file());
  ASSERT_NE(source, nullptr);

  const std::vector<std::string> expected = {"10.96.0.10:81/TCP -> ",
                                             "10.96.0.20:80/TCP -> 10.0.1.1:8080"};
  const Snapshot s = WaitForSnapshot(
      source->cache(), [&](const Snapshot& s) { return Describe(s.state) == expected; });
  EXPECT_EQ(Describe(s.state), expected);
  EXPECT_THAT(s.errors, IsEmpty());
  const std::map<ObjectKind, ListWatchStats> stats = source->stats();
  EXPECT_EQ(stats.at(ObjectKind::kService).resource_version, "102");
  EXPECT_EQ(stats.at(ObjectKind::kEndpointSlice).resource_version, "104");
  EXPECT_EQ(stats.at(ObjectKind::kService).lists, 1u);
}

json Pod(const std::string& ns, const std::string& name, const std::string& sa,
         const std::string& ip, const std::string& rv) {
  return {
      {"apiVersion", "v1"},
      {"kind", "Pod"},
      {"metadata",
       {{"name", name}, {"namespace", ns}, {"resourceVersion", rv}, {"labels", {{"app", name}}}}},
      {"spec",
       {{"serviceAccountName", sa},
        {"nodeName", "node-a"},
        {"containers", {{{"name", "c"}, {"image", "busybox"}}}}}},
      {"status", {{"phase", "Running"}, {"podIP", ip}, {"podIPs", {{{"ip", ip}}}}}}};
}

// "ns/name principal ips" per workload, in key order.
std::vector<std::string> DescribeWorkloads(const model::DesiredState& state) {
  std::vector<std::string> out;
  for (const auto& [key, w] : state.workloads.workloads) {
    std::vector<std::string> ips;
    for (const model::IpAddress& ip : w.ips) ips.push_back(ip.ToString());
    out.push_back(absl::StrCat(key.ToString(), " ", w.principal(), " ", absl::StrJoin(ips, ",")));
  }
  return out;
}

TEST(KubernetesSourceTest, PodsAndNamespacesBecomeWorkloadsAndFollowTheWatch) {
  json script = BaseScript();
  json bad = Pod("shop", "bad", "web", "not-an-ip", "103");
  script[kPods]["watches"] = {
      Watch({EventJson("ADDED", Pod("shop", "web-1", "web", "10.0.1.1", "101")),
             EventJson("MODIFIED", Pod("default", "a-1", "api", "10.0.0.9", "102")),
             EventJson("ADDED", bad), GoneJson()})};
  // The relist after the 410 shows web-1 gone and web-2 new.
  script[kPods]["lists"].push_back(
      {{"body", ListJson("PodList", "v1", "200",
                         {Pod("default", "a-1", "api", "10.0.0.9", "102"),
                          Pod("shop", "web-2", "web", "10.0.1.2", "190")})}});
  script[kNamespaces]["watches"] = {
      Watch({EventJson("ADDED", {{"apiVersion", "v1"},
                                 {"kind", "Namespace"},
                                 {"metadata", {{"name", "shop"}, {"labels", {{"team", "a"}}}}}})})};
  auto server = StartServer(script);
  ASSERT_NE(server, nullptr);
  auto source = StartSource(*server, server->ca_file());
  ASSERT_NE(source, nullptr);

  const std::vector<std::string> relisted = {"default/a-1 cluster.local/ns/default/sa/api 10.0.0.9",
                                             "shop/web-2 cluster.local/ns/shop/sa/web 10.0.1.2"};
  const Snapshot s = WaitForSnapshot(source->cache(), [&](const Snapshot& s) {
    return DescribeWorkloads(s.state) == relisted && s.state.workloads.namespaces.contains("shop");
  });
  EXPECT_EQ(DescribeWorkloads(s.state), relisted);
  EXPECT_EQ(s.state.workloads.namespaces.at("shop").at("team"), "a");
  // The identity of default/sa/default left with a-1's old service account.
  EXPECT_THAT(s.state.workloads.identities, SizeIs(2));
  EXPECT_EQ(s.state.workloads.workloads.at({"shop", "web-2"}).labels.at("app"), "web-2");
  EXPECT_EQ(source->stats().at(ObjectKind::kPod).gone, 1u);
  ASSERT_TRUE(Eventually([&] { return RequestsTo(*server, kPods, true).size() >= 2; }));
  EXPECT_EQ(RequestsTo(*server, kPods, true)[1]["query"]["resourceVersion"], "200");
}

TEST(KubernetesSourceTest, AnInvalidPodIsRejectedAloneWithFieldAndValue) {
  json script = BaseScript();
  script[kPods]["watches"] = {
      Watch({EventJson("ADDED", Pod("shop", "bad", "web", "not-an-ip", "101")),
             EventJson("ADDED", Pod("shop", "good", "web", "10.0.1.1", "102"))})};
  auto server = StartServer(script);
  ASSERT_NE(server, nullptr);
  auto source = StartSource(*server, server->ca_file());
  ASSERT_NE(source, nullptr);
  const Snapshot s = WaitForSnapshot(source->cache(), [](const Snapshot& s) {
    return s.state.workloads.workloads.contains({"shop", "good"}) && !s.errors.empty();
  });
  EXPECT_FALSE(s.state.workloads.workloads.contains({"shop", "bad"}));
  ASSERT_THAT(s.errors, SizeIs(1));
  EXPECT_EQ(s.errors[0],
            "kubernetes-api: Pod shop/bad: status.podIPs[0].ip: invalid value \"not-an-ip\": must "
            "be an IPv4 or IPv6 address");
}

TEST(KubernetesSourceTest, BookmarkAdvancesTheResourceVersionOfTheNextWatch) {
  json script = BaseScript();
  // The first watch sends only a bookmark, then the server ends it (as at its timeoutSeconds).
  script[kServices]["watches"] = {Watch({BookmarkJson("Service", "v1", "150")}, "close")};
  auto server = StartServer(script);
  ASSERT_NE(server, nullptr);
  auto source = StartSource(*server, server->ca_file());
  ASSERT_NE(source, nullptr);

  ASSERT_TRUE(Eventually([&] { return RequestsTo(*server, kServices, true).size() >= 2; }));
  const std::vector<json> watches = RequestsTo(*server, kServices, true);
  EXPECT_EQ(watches[0]["query"]["resourceVersion"], "100");
  EXPECT_EQ(watches[1]["query"]["resourceVersion"], "150");
  EXPECT_THAT(RequestsTo(*server, kServices, false), SizeIs(1));  // no relist
  const ListWatchStats stats = source->stats().at(ObjectKind::kService);
  EXPECT_EQ(stats.bookmarks, 1u);
  EXPECT_EQ(stats.events, 0u);
  // A bookmark changes nothing the datapath sees: still the first published version.
  EXPECT_EQ(WaitForSnapshot(source->cache(), [](const Snapshot&) { return true; }).version, 1u);
}

TEST(KubernetesSourceTest, GoneErrorRelistsFromScratch) {
  json script = BaseScript();
  // After the 410 the relist shows that a was deleted and c created while the watch was away.
  script[kServices]["lists"].push_back(
      {{"body", ServiceList("200", {Svc("c", "10.96.0.30", 80, "190")})}});
  script[kServices]["watches"] = {Watch({GoneJson()})};
  auto server = StartServer(script);
  ASSERT_NE(server, nullptr);
  auto source = StartSource(*server, server->ca_file());
  ASSERT_NE(source, nullptr);

  const std::vector<std::string> expected = {"10.96.0.30:80/TCP -> "};
  const Snapshot s = WaitForSnapshot(
      source->cache(), [&](const Snapshot& s) { return Describe(s.state) == expected; });
  EXPECT_EQ(Describe(s.state), expected);
  ASSERT_TRUE(Eventually([&] { return RequestsTo(*server, kServices, true).size() >= 2; }));
  EXPECT_THAT(RequestsTo(*server, kServices, false), SizeIs(2));
  EXPECT_EQ(RequestsTo(*server, kServices, true)[1]["query"]["resourceVersion"], "200");
  EXPECT_EQ(source->stats().at(ObjectKind::kService).gone, 1u);
}

TEST(KubernetesSourceTest, HttpGoneOnWatchAlsoRelists) {
  json script = BaseScript();
  script[kServices]["watches"] = {
      {{"status", 410},
       {"body", {{"kind", "Status"}, {"code", 410}, {"reason", "Expired"}, {"message", "gone"}}}}};
  auto server = StartServer(script);
  ASSERT_NE(server, nullptr);
  auto source = StartSource(*server, server->ca_file());
  ASSERT_NE(source, nullptr);
  ASSERT_TRUE(Eventually([&] { return RequestsTo(*server, kServices, false).size() >= 2; }));
  EXPECT_EQ(source->stats().at(ObjectKind::kService).gone, 1u);
}

TEST(KubernetesSourceTest, OtherErrorEventIsReportedAndRelistsAfterBackoff) {
  json script = BaseScript();
  script[kServices]["watches"] = {Watch({{{"type", "ERROR"},
                                          {"object",
                                           {{"kind", "Status"},
                                            {"apiVersion", "v1"},
                                            {"status", "Failure"},
                                            {"message", "etcd is unhappy"},
                                            {"code", 500}}}}})};
  auto server = StartServer(script);
  ASSERT_NE(server, nullptr);
  auto source = StartSource(*server, server->ca_file());
  ASSERT_NE(source, nullptr);
  ASSERT_TRUE(Eventually([&] { return RequestsTo(*server, kServices, true).size() >= 2; }));
  EXPECT_THAT(RequestsTo(*server, kServices, false), SizeIs(2));
  const ListWatchStats stats = source->stats().at(ObjectKind::kService);
  EXPECT_EQ(stats.gone, 0u);
  EXPECT_EQ(stats.failures, 1u);
  EXPECT_THAT(stats.last_error, AllOf(HasSubstr("code 500"), HasSubstr("etcd is unhappy")));
  const Snapshot s = WaitForSnapshot(source->cache(), [](const Snapshot&) { return true; });
  EXPECT_THAT(Describe(s.state), ElementsAre("10.96.0.10:80/TCP -> 10.0.0.1:8080,10.0.0.2:8080"));
}

TEST(KubernetesSourceTest, DroppedWatchResumesFromLastVersionWithoutLosingEvents) {
  json script = BaseScript();
  const std::string c_added = EventJson("ADDED", Svc("c", "10.96.0.30", 80, "102")).dump();
  // Event 101 arrives whole; event 102 is cut in the middle when the connection drops.
  json first = Watch({EventJson("ADDED", Svc("b", "10.96.0.20", 80, "101"))}, "drop");
  first["steps"].push_back({{"raw", c_added.substr(0, c_added.size() / 2)}});
  script[kServices]["watches"] = {first,
                                  Watch({EventJson("ADDED", Svc("c", "10.96.0.30", 80, "102"))})};
  auto server = StartServer(script);
  ASSERT_NE(server, nullptr);
  auto source = StartSource(*server, server->ca_file());
  ASSERT_NE(source, nullptr);

  const std::vector<std::string> expected = {"10.96.0.10:80/TCP -> 10.0.0.1:8080,10.0.0.2:8080",
                                             "10.96.0.20:80/TCP -> ", "10.96.0.30:80/TCP -> "};
  const Snapshot s = WaitForSnapshot(
      source->cache(), [&](const Snapshot& s) { return Describe(s.state) == expected; });
  EXPECT_EQ(Describe(s.state), expected);
  EXPECT_THAT(s.errors, IsEmpty());  // the half line was never parsed
  const std::vector<json> watches = RequestsTo(*server, kServices, true);
  ASSERT_THAT(watches, SizeIs(2));
  EXPECT_EQ(watches[0]["query"]["resourceVersion"], "100");
  EXPECT_EQ(watches[1]["query"]["resourceVersion"], "101");
  EXPECT_THAT(RequestsTo(*server, kServices, false), SizeIs(1));  // resumed, not relisted
  const ListWatchStats stats = source->stats().at(ObjectKind::kService);
  EXPECT_EQ(stats.failures, 1u);
  EXPECT_EQ(stats.events, 2u);
  EXPECT_EQ(stats.resource_version, "102");
}

TEST(KubernetesSourceTest, InvalidObjectsAreRejectedOneByOne) {
  json script = BaseScript();
  json bad_list = Svc("bad-list", "10.96.0.40", 80, "91");
  bad_list["metadata"]["annotations"]["sockmesh.io/lb-algorithm"] = "bogus";
  script[kServices]["lists"] = {
      {{"body", ServiceList("100", {Svc("a", "10.96.0.10", 80, "90"), bad_list})}}};
  json bad_event = Svc("bad-event", "10.96.0.50", 80, "101");
  bad_event["spec"]["sessionAffinity"] = "Sticky";
  script[kServices]["watches"] = {Watch(
      {EventJson("ADDED", bad_event), EventJson("ADDED", Svc("b", "10.96.0.20", 80, "102"))})};
  auto server = StartServer(script);
  ASSERT_NE(server, nullptr);
  auto source = StartSource(*server, server->ca_file());
  ASSERT_NE(source, nullptr);

  const Snapshot s = WaitForSnapshot(source->cache(), [](const Snapshot& s) {
    return s.errors.size() == 2 && s.state.size() == 2;
  });
  EXPECT_THAT(Describe(s.state), ElementsAre("10.96.0.10:80/TCP -> 10.0.0.1:8080,10.0.0.2:8080",
                                             "10.96.0.20:80/TCP -> "));
  ASSERT_THAT(s.errors, SizeIs(2));
  EXPECT_THAT(s.errors[0], AllOf(HasSubstr("kubernetes-api: Service default/bad-event: "),
                                 HasSubstr("spec.sessionAffinity"), HasSubstr("\"Sticky\"")));
  EXPECT_THAT(s.errors[1], AllOf(HasSubstr("kubernetes-api: Service default/bad-list: "),
                                 HasSubstr("metadata.annotations"),
                                 HasSubstr("sockmesh.io/lb-algorithm"), HasSubstr("\"bogus\"")));
}

TEST(KubernetesSourceTest, PaginatedListFollowsContinueTokens) {
  json script = BaseScript();
  json page0 = ServiceList("100", {Svc("a", "10.96.0.10", 80, "90")});
  page0["metadata"]["continue"] = "1";
  json page1 = ServiceList("100", {Svc("b", "10.96.0.20", 80, "91")});
  script[kServices]["lists"] = {{{"pages", {page0, page1}}}};
  auto server = StartServer(script);
  ASSERT_NE(server, nullptr);
  auto source = StartSource(*server, server->ca_file());
  ASSERT_NE(source, nullptr);

  const Snapshot s =
      WaitForSnapshot(source->cache(), [](const Snapshot& s) { return s.state.size() == 2; });
  EXPECT_THAT(Describe(s.state), ElementsAre("10.96.0.10:80/TCP -> 10.0.0.1:8080,10.0.0.2:8080",
                                             "10.96.0.20:80/TCP -> "));
  const std::vector<json> lists = RequestsTo(*server, kServices, false);
  ASSERT_THAT(lists, SizeIs(2));
  EXPECT_FALSE(lists[0]["query"].contains("continue"));
  EXPECT_EQ(lists[1]["query"]["continue"], "1");
}

TEST(KubernetesSourceTest, TokenFileIsReadAgainForEveryRequest) {
  auto server = StartServer(BaseScript());
  ASSERT_NE(server, nullptr);
  absl::StatusOr<KubeClient> client =
      KubeClient::Create(*ExplicitConfig(server->url(), server->token_file(), server->ca_file()));
  ASSERT_TRUE(client.ok()) << client.status();
  ASSERT_TRUE(client->Get("/api/v1/namespaces").ok());
  // What the kubelet does when it rotates a projected service-account token.
  std::ofstream(server->token_file(), std::ios::trunc) << "rotated-token\n";
  ASSERT_TRUE(client->Get("/api/v1/namespaces").ok());
  const std::vector<json> requests = server->Requests();
  ASSERT_THAT(requests, SizeIs(2));
  EXPECT_EQ(requests[0]["authorization"], absl::StrCat("Bearer ", FakeKubeApiServer::kToken));
  EXPECT_EQ(requests[1]["authorization"], "Bearer rotated-token");
}

TEST(KubernetesSourceTest, RefusedListIsRetriedAndReported) {
  json script = BaseScript();
  const json unauthorized = {{"kind", "Status"},         {"apiVersion", "v1"},
                             {"status", "Failure"},      {"message", "Unauthorized"},
                             {"reason", "Unauthorized"}, {"code", 401}};
  // Refused twice (a token not yet valid, say), then served.
  script[kServices]["lists"] = {{{"status", 401}, {"body", unauthorized}},
                                {{"status", 401}, {"body", unauthorized}},
                                script[kServices]["lists"][0]};
  auto server = StartServer(script);
  ASSERT_NE(server, nullptr);
  auto source = StartSource(*server, server->ca_file());
  ASSERT_NE(source, nullptr);
  const Snapshot s = WaitForSnapshot(source->cache(), [](const Snapshot&) { return true; });
  EXPECT_THAT(Describe(s.state), ElementsAre("10.96.0.10:80/TCP -> 10.0.0.1:8080,10.0.0.2:8080"));
  const ListWatchStats stats = source->stats().at(ObjectKind::kService);
  EXPECT_EQ(stats.failures, 2u);
  EXPECT_THAT(stats.last_error,
              AllOf(HasSubstr("list Services: HTTP 401"), HasSubstr("Unauthorized")));
  EXPECT_THAT(RequestsTo(*server, kServices, false), SizeIs(3));
}

TEST(KubernetesSourceTest, ServerSignedByAnUnknownCaIsRefused) {
  auto server = StartServer(BaseScript());
  ASSERT_NE(server, nullptr);

  // The trusted CA works; the other CA (which did not sign the server's certificate) is refused
  // before any HTTP request is made.
  absl::StatusOr<KubeClient> good =
      KubeClient::Create(*ExplicitConfig(server->url(), server->token_file(), server->ca_file()));
  ASSERT_TRUE(good.ok()) << good.status();
  absl::StatusOr<HttpResponse> response = good->Get("/api/v1/namespaces");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200);

  absl::StatusOr<KubeClient> bad = KubeClient::Create(
      *ExplicitConfig(server->url(), server->token_file(), server->other_ca_file()));
  ASSERT_TRUE(bad.ok()) << bad.status();
  const size_t requests_before = server->Requests().size();
  response = bad->Get("/api/v1/namespaces");
  EXPECT_EQ(response.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(response.status().message(), HasSubstr("certificate"));
  EXPECT_EQ(server->Requests().size(), requests_before);

  // The source keeps retrying and never publishes a state from an unverified server.
  auto source = StartSource(*server, server->other_ca_file());
  ASSERT_NE(source, nullptr);
  ASSERT_TRUE(Eventually([&] { return source->stats().at(ObjectKind::kService).failures >= 2; }));
  EXPECT_THAT(source->stats().at(ObjectKind::kService).last_error, HasSubstr("certificate"));
  EXPECT_EQ(source->cache().Get().version, 0u);
  EXPECT_EQ(server->Requests().size(), requests_before);
}

TEST(ObjectCacheTest, TrafficPolicyOverridesTheServiceAndSplitsBySubset) {
  ObjectCache cache;
  cache.Replace(ObjectKind::kNamespace, {});
  cache.Replace(ObjectKind::kPod, {Pod("a-1", "10.0.0.1", "v1"), Pod("a-2", "10.0.0.2", "v2")});
  cache.Replace(ObjectKind::kService, {Svc("a", "10.96.0.10", 80, "1")});
  cache.Replace(ObjectKind::kEndpointSlice, {Slice("a", {"10.0.0.1", "10.0.0.2"}, "2")});
  json broken = CanaryPolicy("broken", "4");
  broken["spec"]["trafficPolicy"]["connectionPool"]["tcp"]["maxConnections"] = 0;
  cache.Replace(ObjectKind::kAuthorizationPolicy, {});
  cache.Replace(ObjectKind::kTrafficPolicy, {CanaryPolicy("canary", "3"), broken});
  Snapshot s = cache.Get();
  ASSERT_EQ(s.version, 1u);
  // The invalid policy is rejected alone, naming the field and the value.
  ASSERT_THAT(s.errors, SizeIs(1));
  EXPECT_THAT(s.errors[0], AllOf(HasSubstr("kubernetes-api: TrafficPolicy default/broken: "),
                                 HasSubstr("spec.trafficPolicy.connectionPool.tcp.maxConnections"),
                                 HasSubstr("\"0\"")));
  const model::ServiceEntry& entry = s.state.begin()->second;
  EXPECT_EQ(entry.algorithm, model::LbAlgorithm::kLeastConnections);
  EXPECT_EQ(entry.max_connections_per_backend, 5u);
  EXPECT_EQ(entry.outlier.consecutive_connect_failures, 3u);
  EXPECT_EQ(entry.outlier.base_ejection_ms, 2000u);
  EXPECT_EQ(entry.traffic_policy, "default/canary");
  ASSERT_THAT(entry.backends, SizeIs(2));
  EXPECT_EQ(entry.backends[0].weight, 90 * 600u);
  EXPECT_EQ(entry.backends[1].weight, 10 * 600u);

  // Deleting the policy gives the Service back its own settings.
  cache.Apply(ObjectKind::kTrafficPolicy, EventType::kDeleted, CanaryPolicy("canary", "5"));
  s = cache.Get();
  EXPECT_EQ(s.state.begin()->second.algorithm, model::LbAlgorithm::kRandom);
  EXPECT_EQ(s.state.begin()->second.backends[1].weight, 1u);
}

TEST(KubernetesSourceTest, TrafficPoliciesAreListedAndWatched) {
  json script = BaseScript();
  script[kPods]["lists"] = {
      {{"body", ListJson("PodList", "v1", "100",
                         {Pod("a-1", "10.0.0.1", "v1"), Pod("a-2", "10.0.0.2", "v2")})}}};
  script[kTrafficPolicies]["lists"] = {
      {{"body", ListJson("TrafficPolicyList", "sockmesh.io/v1alpha1", "100",
                         {CanaryPolicy("canary", "90")})}}};
  json changed = CanaryPolicy("canary", "101");
  changed["spec"]["split"] = json::parse(R"([{"subset": "v1", "weight": 50},
                                             {"subset": "v2", "weight": 50}])");
  script[kTrafficPolicies]["watches"] = {
      {{"steps", {{{"event", EventJson("MODIFIED", changed)}}}}, {"end", "hold"}}};
  auto server = StartServer(script);
  ASSERT_NE(server, nullptr);
  auto source = StartSource(*server, server->ca_file());
  ASSERT_NE(source, nullptr);

  const Snapshot s = WaitForSnapshot(source->cache(), [](const Snapshot& s) {
    const auto& backends = s.state.begin()->second.backends;
    return backends.size() == 2 && backends[0].weight == backends[1].weight;
  });
  ASSERT_FALSE(s.state.empty());
  const model::ServiceEntry& entry = s.state.begin()->second;
  EXPECT_EQ(entry.traffic_policy, "default/canary");
  EXPECT_EQ(entry.backends[0].weight, 50 * 600u);
  EXPECT_EQ(entry.backends[1].weight, 50 * 600u);
  EXPECT_THAT(s.errors, IsEmpty());
  EXPECT_THAT(RequestsTo(*server, kTrafficPolicies, false), SizeIs(1));
}

}  // namespace
}  // namespace sockmesh::sources::kubernetes
