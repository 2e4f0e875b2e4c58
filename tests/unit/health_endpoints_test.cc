// SPDX-License-Identifier: Apache-2.0
// The metrics listener and the health checks it serves, over real HTTP on 127.0.0.1: /metrics
// from registered collectables, 404 elsewhere, and the agent's and the control plane's /healthz
// and /readyz answering 200 or 503 with the reasons, driven through every condition with a fake
// clock and a fake count of attached programs.
#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include <atomic>
#include <memory>

#include "absl/strings/str_cat.h"
#include "control_plane/server/control_health.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/support/metrics_scrape.h"
#include "userspace/agent/agent_health.h"
#include "userspace/metrics/metrics_server.h"

namespace sockmesh {
namespace {

using ::sockmesh::testing::HttpAnswer;
using ::sockmesh::testing::HttpGet;
using ::testing::HasSubstr;

std::unique_ptr<metrics::MetricsServer> StartServer() {
  auto server = metrics::MetricsServer::Start("127.0.0.1:0", "--metrics-addr");
  EXPECT_TRUE(server.ok()) << server.status();
  return server.ok() ? *std::move(server) : nullptr;
}

// A clock the test moves.
struct FakeClock {
  absl::Time now = absl::FromUnixSeconds(1'800'000'000);
  std::function<absl::Time()> Fn() {
    return [this] { return now; };
  }
};

nlohmann::json Json(const HttpAnswer& a) { return nlohmann::json::parse(a.body); }

TEST(MetricsServer, ServesCollectablesHandlersAnd404) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  ASSERT_GT(server->port(), 0);
  auto registry = std::make_shared<prometheus::Registry>();
  prometheus::BuildCounter()
      .Name("test_things_total")
      .Help("h")
      .Register(*registry)
      .Add({})
      .Increment(3);
  server->AddCollectable(registry);
  server->Handle("/readyz", [] {
    return metrics::HttpResponse{.status = 503, .body = "{\"ready\":false}\n"};
  });

  HttpAnswer m = HttpGet(server->port(), "/metrics");
  EXPECT_EQ(m.status, 200);
  EXPECT_THAT(m.body, HasSubstr("test_things_total 3"));
  HttpAnswer r = HttpGet(server->port(), "/readyz");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body, "{\"ready\":false}\n");
  EXPECT_EQ(HttpGet(server->port(), "/metrics/x").status, 404);
  EXPECT_EQ(HttpGet(server->port(), "/readyz/x").status, 404);
  // A collectable that is gone is skipped, not dereferenced.
  registry.reset();
  EXPECT_EQ(HttpGet(server->port(), "/metrics").status, 200);
}

TEST(MetricsServer, BusyPortIsRefusedNamingTheFlag) {
  auto first = StartServer();
  ASSERT_NE(first, nullptr);
  auto second =
      metrics::MetricsServer::Start(absl::StrCat("127.0.0.1:", first->port()), "--metrics-addr");
  ASSERT_FALSE(second.ok());
  EXPECT_THAT(second.status().message(),
              HasSubstr(absl::StrCat("--metrics-addr: cannot listen on \"127.0.0.1:", first->port(),
                                     "\"")));
}

class AgentHealthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    health_ = std::make_unique<agent::AgentHealth>(agent::AgentHealthOptions{
        .programs_expected = 11,
        .programs_attached = [this]() -> absl::StatusOr<size_t> { return attached_.load(); },
        .control_plane = "127.0.0.1:15010",
        .now = clock_.Fn()});
    server_ = StartServer();
    ASSERT_NE(server_, nullptr);
    health_->ServeOn(*server_);
  }
  void TearDown() override { server_.reset(); }  // before health_

  HttpAnswer Live() { return HttpGet(server_->port(), "/healthz"); }
  HttpAnswer Ready() { return HttpGet(server_->port(), "/readyz"); }

  FakeClock clock_;
  std::atomic<size_t> attached_{11};
  std::unique_ptr<agent::AgentHealth> health_;
  std::unique_ptr<metrics::MetricsServer> server_;
};

TEST_F(AgentHealthTest, NotReadyUntilAVersionIsApplied) {
  HttpAnswer live = Live();
  EXPECT_EQ(live.status, 200) << live.body;
  HttpAnswer ready = Ready();
  EXPECT_EQ(ready.status, 503) << ready.body;
  nlohmann::json j = Json(ready);
  EXPECT_EQ(j["live"], true);
  EXPECT_EQ(j["ready"], false);
  EXPECT_EQ(
      j["not_ready"],
      nlohmann::json::array({"no version from the control plane (127.0.0.1:15010) applied yet"}));
  EXPECT_EQ(j["programs"]["attached"], 11);
  EXPECT_EQ(j["programs"]["expected"], 11);
  EXPECT_EQ(j["control_plane"]["connected"], false);
  EXPECT_EQ(j["control_plane"]["acked_version"], 0);
  EXPECT_TRUE(j["last_sync"]["time"].is_null());

  health_->SetControlPlaneConnected(true);
  health_->SetShortCircuit(true);
  health_->RecordSync("");
  health_->RecordVersion(3, true);
  ready = Ready();
  EXPECT_EQ(ready.status, 200) << ready.body;
  j = Json(ready);
  EXPECT_EQ(j["ready"], true);
  EXPECT_TRUE(j["not_ready"].empty());
  EXPECT_EQ(j["control_plane"]["connected"], true);
  EXPECT_EQ(j["control_plane"]["acked_version"], 3);
  EXPECT_EQ(j["short_circuit"]["enabled"], true);
  EXPECT_EQ(j["last_sync"]["time"], "2027-01-15T08:00:00Z");
  EXPECT_TRUE(j["last_sync"]["error"].is_null());

  // The stream going away is reported, not a reason to be unready: the last version stays.
  health_->SetControlPlaneConnected(false);
  EXPECT_EQ(Ready().status, 200);
}

TEST_F(AgentHealthTest, DetachedProgramNackAndFailedSyncMakeItUnready) {
  health_->RecordSync("");
  health_->RecordVersion(2, true);
  ASSERT_EQ(Ready().status, 200);

  attached_ = 10;
  HttpAnswer ready = Ready();
  EXPECT_EQ(ready.status, 503);
  EXPECT_THAT(ready.body, HasSubstr("10 of 11 programs attached to the mesh cgroup"));
  EXPECT_EQ(Live().status, 200) << "a detached program is for readiness, not liveness";
  attached_ = 11;

  health_->RecordSync("1 of 2 services cannot be written: map sm_lut_v1 update: E2BIG");
  health_->RecordVersion(3, false);
  ready = Ready();
  EXPECT_EQ(ready.status, 503);
  nlohmann::json j = Json(ready);
  EXPECT_EQ(j["not_ready"],
            nlohmann::json::array(
                {"the newest version, 3, was NACKed: version 2 stays applied",
                 "last map sync failed: 1 of 2 services cannot be written: map sm_lut_v1 "
                 "update: E2BIG"}));
  EXPECT_EQ(j["control_plane"]["last_nacked_version"], 3);

  // The next version applies: ready again.
  health_->RecordSync("");
  health_->RecordVersion(4, true);
  EXPECT_EQ(Ready().status, 200) << Ready().body;

  // A drift repair that fails makes it unready until one succeeds.
  health_->RecordSync("drift repair: cannot re-read kernel maps: EPERM");
  EXPECT_EQ(Ready().status, 503);
  health_->RecordSync("");
  EXPECT_EQ(Ready().status, 200);
}

TEST_F(AgentHealthTest, StalledMainLoopFailsLiveness) {
  health_->RecordSync("");
  health_->RecordVersion(1, true);
  clock_.now += agent::kMainLoopStallLimit - absl::Seconds(1);
  EXPECT_EQ(Live().status, 200);
  clock_.now += absl::Seconds(2);
  HttpAnswer live = Live();
  EXPECT_EQ(live.status, 503);
  nlohmann::json j = Json(live);
  EXPECT_EQ(j["live"], false);
  EXPECT_EQ(j["not_live"], nlohmann::json::array({"main loop stalled: no heartbeat for 1m1s "
                                                  "(limit 1m)"}));
  EXPECT_EQ(Ready().status, 503) << "not live is not ready either";
  health_->Heartbeat();
  EXPECT_EQ(Live().status, 200);
  EXPECT_EQ(Ready().status, 200);
}

TEST(ControlHealth, ReadyOnceTheSourceIsSyncedAndGrpcServes) {
  FakeClock clock;
  uint64_t version = 1;
  cp::ControlHealth health(cp::ControlHealthOptions{.source = "manifests /etc/sockmesh",
                                                    .version = [&version] { return version; },
                                                    .now = clock.Fn()});
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  health.ServeOn(*server);

  EXPECT_EQ(HttpGet(server->port(), "/healthz").status, 200);
  HttpAnswer ready = HttpGet(server->port(), "/readyz");
  EXPECT_EQ(ready.status, 503);
  EXPECT_EQ(Json(ready)["not_ready"],
            nlohmann::json::array(
                {"source not synced yet: manifests /etc/sockmesh", "gRPC API not serving yet"}));
  health.SetSourceSynced(true);
  version = 2;
  EXPECT_EQ(HttpGet(server->port(), "/readyz").status, 503);
  health.SetServing("127.0.0.1:15010");
  ready = HttpGet(server->port(), "/readyz");
  EXPECT_EQ(ready.status, 200) << ready.body;
  nlohmann::json j = Json(ready);
  EXPECT_EQ(j["version"], 2);
  EXPECT_EQ(j["grpc"], "127.0.0.1:15010");
  EXPECT_EQ(j["source"]["synced"], true);

  clock.now += cp::kControlLoopStallLimit + absl::Seconds(1);
  EXPECT_EQ(HttpGet(server->port(), "/healthz").status, 503);
  EXPECT_EQ(HttpGet(server->port(), "/readyz").status, 503);
  health.Heartbeat();
  EXPECT_EQ(HttpGet(server->port(), "/healthz").status, 200);
  server.reset();  // before health
}

}  // namespace
}  // namespace sockmesh
