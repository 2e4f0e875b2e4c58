// SPDX-License-Identifier: Apache-2.0
// The demo manifests in deploy/examples/standalone must always parse, and must describe what the
// demo promises: three ready echo backends behind each Service, the not-ready one left out.
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

TEST(StandaloneExamplesTest, EveryFileParses) {
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(kExamples)) {
    const std::string ext = entry.path().extension().string();
    if (ext != ".yaml" && ext != ".yml") continue;
    ++files;
    absl::StatusOr<ParsedManifests> parsed = ParseManifestFile(entry.path());
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_THAT(parsed->notes, IsEmpty()) << entry.path();
  }
  EXPECT_GE(files, 2);
}

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

}  // namespace
}  // namespace sockmesh::sources
