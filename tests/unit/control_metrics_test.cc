// SPDX-License-Identifier: Apache-2.0
// The control plane's own metrics, scraped over HTTP as Prometheus would: agents connected, push
// latency (version created to answer), NACKs, and the objects of the current state by kind. The
// state comes from a manifests directory through the real source, and the agents are the agent's
// stream client against the real gRPC service.
#include "control_plane/server/control_metrics.h"

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <memory>
#include <thread>

#include "absl/strings/str_cat.h"
#include "control_plane/server/control_plane_service.h"
#include "control_plane/server/desired_state_source.h"
#include "control_plane/server/versioned_state.h"
#include "gtest/gtest.h"
#include "tests/support/manifest_files.h"
#include "tests/support/metrics_scrape.h"
#include "tests/support/temp_dir.h"
#include "userspace/agent/control_plane_client.h"

namespace sockmesh::cp {
namespace {

using ::sockmesh::testing::MetricValue;
using ::sockmesh::testing::OneTcpServiceYaml;
using ::sockmesh::testing::Scrape;
using ::sockmesh::testing::TempDir;
using ::sockmesh::testing::WriteManifest;

// Polls /metrics until `series` has `want`, or 10 s pass; returns the last scrape.
std::string WaitForMetric(uint16_t port, const std::string& series, double want) {
  std::string text;
  for (int i = 0; i < 200; ++i) {
    text = Scrape(port);
    if (MetricValue(text, series) == want) break;
    absl::SleepFor(absl::Milliseconds(50));
  }
  return text;
}

TEST(ControlMetricsTest, AgentsLatencyNacksAndObjectsByKind) {
  TempDir dir("sockmesh-control-metrics");
  WriteManifest(dir.path(), "web.yaml",
                OneTcpServiceYaml("web", "10.0.0.1", 80, {"10.1.0.1", "10.1.0.2"}, 8080));
  WriteManifest(dir.path(), "api.yaml",
                OneTcpServiceYaml("api", "10.0.0.2", 80, {"10.1.0.3"}, 8080));
  absl::StatusOr<std::unique_ptr<ControlMetrics>> metrics = ControlMetrics::Create("127.0.0.1:0");
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  const uint16_t metrics_port = static_cast<uint16_t>((*metrics)->port());
  ASSERT_NE(metrics_port, 0);
  auto source = ManifestDirectorySource::Create(dir.path());
  ASSERT_TRUE(source.ok()) << source.status();
  VersionedState state;
  (*source)->WaitAndPublish(absl::ZeroDuration(), state, **metrics);

  ControlPlaneService service(&state, metrics->get());
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);

  // Two agents; "picky" refuses any state with the api Service.
  std::atomic<bool> stop{false};
  std::vector<std::unique_ptr<agent::ControlPlaneClient>> clients;
  std::vector<std::thread> threads;
  for (const std::string name : {"plain", "picky"}) {
    clients.push_back(std::make_unique<agent::ControlPlaneClient>(
        agent::ControlPlaneClientOptions{.address = absl::StrCat("127.0.0.1:", port),
                                         .node_name = name,
                                         .agent_version = "test"},
        [name](const model::DesiredState& s, const v1::CompiledPolicy&) -> absl::Status {
          if (name == "picky" && s.size() > 1) return absl::ResourceExhaustedError("map full");
          return absl::OkStatus();
        }));
    threads.emplace_back([c = clients.back().get(), &stop] { c->Run(stop); });
  }

  std::string text = WaitForMetric(metrics_port, "sockmesh_control_nacks_total", 1);
  EXPECT_EQ(MetricValue(text, "sockmesh_control_agents_connected"), 2.0) << text;
  EXPECT_EQ(MetricValue(text, "sockmesh_control_nacks_total"), 1.0) << text;
  EXPECT_EQ(MetricValue(text, "sockmesh_control_answers_total{answer=\"ack\"}"), 1.0) << text;
  EXPECT_EQ(MetricValue(text, "sockmesh_control_objects{kind=\"service\"}"), 2.0) << text;
  EXPECT_EQ(MetricValue(text, "sockmesh_control_objects{kind=\"backend\"}"), 3.0) << text;
  // Every answer, ACK or NACK, is one latency sample; all well under 5 s on loopback.
  EXPECT_EQ(MetricValue(text, "sockmesh_control_push_latency_seconds_count"), 2.0) << text;
  EXPECT_EQ(MetricValue(text, "sockmesh_control_push_latency_seconds_bucket{le=\"5\"}"), 2.0)
      << text;

  // Dropping the api Service: both agents ACK the next version, and the gauges follow.
  ::unlink((dir.path() + "/api.yaml").c_str());
  for (int i = 0; i < 40 && state.Current().version < 3; ++i) {
    (*source)->WaitAndPublish(absl::Milliseconds(250), state, **metrics);
  }
  text = WaitForMetric(metrics_port, "sockmesh_control_answers_total{answer=\"ack\"}", 3);
  EXPECT_EQ(MetricValue(text, "sockmesh_control_answers_total{answer=\"ack\"}"), 3.0) << text;
  EXPECT_EQ(MetricValue(text, "sockmesh_control_objects{kind=\"service\"}"), 1.0) << text;
  EXPECT_EQ(MetricValue(text, "sockmesh_control_objects{kind=\"backend\"}"), 2.0) << text;
  EXPECT_EQ(MetricValue(text, "sockmesh_control_push_latency_seconds_count"), 4.0) << text;

  stop = true;
  for (std::thread& t : threads) t.join();
  text = WaitForMetric(metrics_port, "sockmesh_control_agents_connected", 0);
  EXPECT_EQ(MetricValue(text, "sockmesh_control_agents_connected"), 0.0) << text;
  service.Shutdown();
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
}

}  // namespace
}  // namespace sockmesh::cp
