// SPDX-License-Identifier: Apache-2.0
// The example manifests must always parse, and must describe what they promise:
// deploy/examples/standalone, three ready echo backends behind each Service, the not-ready one
// left out; deploy/examples/platform, the five platform services with two replicas each (gRPC and
// /health ports) and the two databases, all VIPs in 127.10.20.0/24.
#include <filesystem>
#include <string>
#include <vector>

#include "control_plane/sources/desired_state_builder.h"
#include "control_plane/sources/manifest_directory.h"
#include "control_plane/sources/manifest_parser.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sockmesh::sources {
namespace {

using model::Backend;
using model::Frontend;
using model::IpAddress;
using model::Protocol;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::SizeIs;

const std::filesystem::path kExamples =
    std::filesystem::path(SOCKMESH_SOURCE_DIR) / "deploy/examples/standalone";

IpAddress Ip(std::string_view text) { return IpAddress::Parse(text).value(); }

std::vector<Backend> EchoBackends(uint16_t port) {
  return {Backend{Ip("127.0.0.11"), port, 1}, Backend{Ip("127.0.0.12"), port, 1},
          Backend{Ip("127.0.0.13"), port, 1}};
}

const std::filesystem::path kPlatformExamples =
    std::filesystem::path(SOCKMESH_SOURCE_DIR) / "deploy/examples/platform";

int ParseEveryFile(const std::filesystem::path& dir) {
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string ext = entry.path().extension().string();
    if (ext != ".yaml" && ext != ".yml") continue;
    ++files;
    absl::StatusOr<ParsedManifests> parsed = ParseManifestFile(entry.path());
    EXPECT_TRUE(parsed.ok()) << parsed.status();
    if (parsed.ok()) EXPECT_THAT(parsed->notes, IsEmpty()) << entry.path();
  }
  return files;
}

TEST(StandaloneExamplesTest, EveryFileParses) { EXPECT_GE(ParseEveryFile(kExamples), 2); }

TEST(StandaloneExamplesTest, DirectoryYieldsTheDemoState) {
  ManifestDirectory dir(kExamples);
  absl::StatusOr<ReloadResult> result = dir.Reload();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_THAT(result->errors, IsEmpty());
  const model::DesiredState& state = result->state;
  ASSERT_THAT(state, SizeIs(4));

  const model::ServiceEntry& echo = state.at(Frontend{Ip("127.10.0.10"), 80, Protocol::kTcp});
  EXPECT_EQ(echo.namespace_name, "demo");
  EXPECT_EQ(echo.service_name, "echo");
  EXPECT_EQ(echo.algorithm, model::LbAlgorithm::kRandom);
  EXPECT_EQ(echo.affinity, model::SessionAffinity::kNone);
  EXPECT_EQ(echo.backends, EchoBackends(8080));
  EXPECT_EQ(state.at(Frontend{Ip("127.10.0.10"), 9000, Protocol::kUdp}).backends,
            EchoBackends(9000));

  const model::ServiceEntry& maglev = state.at(Frontend{Ip("127.10.0.11"), 80, Protocol::kTcp});
  EXPECT_EQ(maglev.service_name, "echo-maglev");
  EXPECT_EQ(maglev.algorithm, model::LbAlgorithm::kMaglev);
  EXPECT_EQ(maglev.affinity, model::SessionAffinity::kClientIP);
  EXPECT_EQ(maglev.affinity_timeout_seconds, 60u);
  EXPECT_EQ(maglev.backends, EchoBackends(8080));
  EXPECT_EQ(state.at(Frontend{Ip("127.10.0.11"), 9000, Protocol::kUdp}).backends,
            EchoBackends(9000));
}

TEST(StandaloneExamplesTest, DirectoryYieldsTheDemoWorkloads) {
  ManifestDirectory dir(kExamples);
  absl::StatusOr<ReloadResult> result = dir.Reload();
  ASSERT_TRUE(result.ok()) << result.status();
  const model::WorkloadState& w = result->state.workloads;
  ASSERT_THAT(w.workloads, SizeIs(4));
  EXPECT_THAT(w.identities, SizeIs(2));  // echo-1..3 share a service account
  const model::Workload& echo = w.workloads.at({"demo", "echo-2"});
  EXPECT_EQ(echo.principal(), "cluster.local/ns/demo/sa/echo");
  EXPECT_THAT(echo.ips, ElementsAre(Ip("127.0.0.12")));
  EXPECT_EQ(echo.identity, w.identities.at("cluster.local/ns/demo/sa/echo"));
  const model::Workload& client = w.workloads.at({"demo", "client"});
  EXPECT_EQ(client.kind, model::WorkloadKind::kWorkloadEntry);
  EXPECT_THAT(client.ips, IsEmpty());
  EXPECT_EQ(client.identity, w.identities.at("cluster.local/ns/demo/sa/client"));
  EXPECT_EQ(w.namespaces.at("demo").at("team"), "platform");
}

TEST(PlatformExamplesTest, EveryFileParses) { EXPECT_EQ(ParseEveryFile(kPlatformExamples), 6); }

TEST(PlatformExamplesTest, DirectoryYieldsTheFiveServicesAndTheDatabases) {
  ManifestDirectory dir(kPlatformExamples);
  absl::StatusOr<ReloadResult> result = dir.Reload();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_THAT(result->errors, IsEmpty());
  const model::DesiredState& state = result->state;
  ASSERT_THAT(state, SizeIs(5 * 2 + 2));
  const char* names[] = {"user", "product", "inventory", "payment", "order"};
  for (int i = 1; i <= 5; ++i) {
    const std::string vip = "127.10.20." + std::to_string(i);
    const std::string a = "127.0.20." + std::to_string(i) + "1";
    const std::string b = "127.0.20." + std::to_string(i) + "2";
    const model::ServiceEntry& grpc = state.at(Frontend{Ip(vip), 80, Protocol::kTcp});
    EXPECT_EQ(grpc.namespace_name, "shop");
    EXPECT_EQ(grpc.service_name, names[i - 1]);
    const uint16_t grpc_port = static_cast<uint16_t>(7000 + i);
    EXPECT_EQ(grpc.backends,
              (std::vector<Backend>{Backend{Ip(a), grpc_port, 1}, Backend{Ip(b), grpc_port, 1}}));
    const uint16_t http_port = static_cast<uint16_t>(8000 + i);
    EXPECT_EQ(state.at(Frontend{Ip(vip), 8080, Protocol::kTcp}).backends,
              (std::vector<Backend>{Backend{Ip(a), http_port, 1}, Backend{Ip(b), http_port, 1}}));
  }
  EXPECT_THAT(state.at(Frontend{Ip("127.10.20.10"), 5432, Protocol::kTcp}).backends,
              ElementsAre(Backend{Ip("127.0.20.100"), 5432, 1}));
  EXPECT_THAT(state.at(Frontend{Ip("127.10.20.11"), 6379, Protocol::kTcp}).backends,
              ElementsAre(Backend{Ip("127.0.20.110"), 6379, 1}));
}

}  // namespace
}  // namespace sockmesh::sources
