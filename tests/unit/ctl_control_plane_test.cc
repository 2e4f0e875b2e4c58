// SPDX-License-Identifier: Apache-2.0
// sockmeshctl's control-plane commands without a server: `validate` over files and directories,
// and how `status` classifies and prints agents.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "userspace/ctl/agent_status.h"
#include "userspace/ctl/manifest_validation.h"

namespace sockmesh::ctl {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

constexpr char kService[] = R"(apiVersion: v1
kind: Service
metadata: {name: web, namespace: test}
spec:
  clusterIP: 127.10.0.1
  ports: [{name: http, port: 80, targetPort: 8080}]
)";
constexpr char kSlice[] = R"(apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-1
  namespace: test
  labels: {kubernetes.io/service-name: web}
addressType: IPv4
endpoints: [{addresses: ["127.0.0.11"]}, {addresses: ["127.0.0.12"]}]
ports: [{name: http, port: 8080}]
)";

class ValidateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sockmesh-validate-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Write(const std::string& name, const std::string& content) {
    std::string path = dir_ + "/" + name;
    std::ofstream(path) << content;
    return path;
  }
  std::string dir_;
};

TEST_F(ValidateTest, ValidDirectory) {
  Write("svc.yaml", kService);
  Write("slice.yaml", kSlice);
  absl::StatusOr<ValidationResult> r = ValidateManifests(dir_);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->valid());
  EXPECT_EQ(r->files, 2u);
  EXPECT_EQ(r->frontends, 1u);
  EXPECT_EQ(r->backends, 2u);
  EXPECT_THAT(FormatValidationText(dir_, *r), HasSubstr("valid (2 files, 1 frontends"));
}

// TrafficPolicy conditions: one in force, one whose Service does not exist.
TEST_F(ValidateTest, ShowsTrafficPolicyConditions) {
  Write("svc.yaml", kService);
  Write("slice.yaml", kSlice);
  Write("policies.yaml", R"(apiVersion: sockmesh.io/v1alpha1
kind: TrafficPolicy
metadata: {name: web, namespace: test}
spec: {host: web, trafficPolicy: {loadBalancer: {simple: LEAST_CONN}}}
---
apiVersion: sockmesh.io/v1alpha1
kind: TrafficPolicy
metadata: {name: gone, namespace: test}
spec: {host: missing}
)");
  absl::StatusOr<ValidationResult> r = ValidateManifests(dir_);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->valid());
  const std::string text = FormatValidationText(dir_, *r);
  EXPECT_THAT(text, HasSubstr("TrafficPolicy test/gone: ResolvedRefs=False (HostNotFound)"));
  EXPECT_THAT(text, HasSubstr("TrafficPolicy test/web: Accepted=True (Accepted)"));
  EXPECT_THAT(text, HasSubstr("TrafficPolicy test/web: ResolvedRefs=True (ResolvedRefs)"));
  nlohmann::json j = nlohmann::json::parse(FormatValidationJson(dir_, *r));
  ASSERT_EQ(j["traffic_policies"].size(), 2u);
  EXPECT_EQ(j["traffic_policies"][0]["conditions"][1]["status"], "False");
  EXPECT_EQ(j["traffic_policies"][0]["conditions"][1]["reason"], "HostNotFound");
}

TEST_F(ValidateTest, InvalidFileNamesFieldAndValue) {
  std::string path =
      Write("bad.yaml", absl::StrReplaceAll(kService, {{"port: 80", "port: 99999"}}));
  absl::StatusOr<ValidationResult> r = ValidateManifests(path);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_FALSE(r->valid());
  EXPECT_THAT(r->errors[0], HasSubstr("spec.ports[0].port"));
  EXPECT_THAT(r->errors[0], HasSubstr("99999"));
  nlohmann::json j = nlohmann::json::parse(FormatValidationJson(path, *r));
  EXPECT_EQ(j["valid"], false);
  EXPECT_EQ(j["errors"].size(), 1u);
}

TEST_F(ValidateTest, ConflictBetweenFilesIsAnError) {
  Write("a.yaml", kService);
  Write("b.yaml", absl::StrReplaceAll(kService, {{"name: web", "name: other"}}));
  absl::StatusOr<ValidationResult> r = ValidateManifests(dir_);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->valid());
}

TEST_F(ValidateTest, MissingPathIsNotFound) {
  EXPECT_EQ(ValidateManifests(dir_ + "/nope").status().code(), absl::StatusCode::kNotFound);
}

TEST(AgentStatusTest, SyncStates) {
  v1::AgentStatus a;
  a.set_last_sent_version(5);
  a.set_last_acked_version(5);
  EXPECT_EQ(SyncState(a, 5), "SYNCED");
  a.set_last_sent_version(6);
  EXPECT_EQ(SyncState(a, 6), "STALE");
  a.set_last_nacked_version(6);
  a.set_last_nack_error("map full");
  EXPECT_EQ(SyncState(a, 6), "NACKED");
  a.set_last_sent_version(7);
  EXPECT_EQ(SyncState(a, 7), "STALE");
}

TEST(AgentStatusTest, TableAndJson) {
  v1::ListAgentsResponse r;
  r.set_current_version(3);
  v1::AgentStatus* a = r.add_agents();
  a->set_node_name("node-a");
  a->set_last_sent_version(3);
  a->set_last_acked_version(2);
  a->set_last_nacked_version(3);
  a->set_last_nack_error("sm_lut_v1 full");
  a->set_connected_since_unix_ms(1700000000000);
  a->set_last_contact_unix_ms(1700000005000);
  std::string table = FormatAgentStatusTable(r, absl::FromUnixSeconds(1700000010));
  EXPECT_THAT(table, HasSubstr("control plane version v3, 1 agents connected"));
  EXPECT_THAT(table, HasSubstr("node-a"));
  EXPECT_THAT(table, HasSubstr("NACKED"));
  EXPECT_THAT(table, HasSubstr("10s ago"));
  EXPECT_THAT(table, HasSubstr("v3: sm_lut_v1 full"));
  nlohmann::json j = nlohmann::json::parse(FormatAgentStatusJson(r));
  EXPECT_EQ(j["current_version"], 3);
  EXPECT_EQ(j["agents"][0]["status"], "NACKED");
  EXPECT_EQ(j["agents"][0]["last_acked_version"], 2);
  EXPECT_EQ(j["agents"][0]["connected_since"], "2023-11-14T22:13:20Z");
}

}  // namespace
}  // namespace sockmesh::ctl
