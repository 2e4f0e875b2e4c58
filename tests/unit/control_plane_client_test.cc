// SPDX-License-Identifier: Apache-2.0
// The agent's stream client against the real gRPC service, in one process on loopback: snapshot
// then deltas, a version the apply function refuses is NACKed and not resent, and the backoff.
#include "userspace/agent/control_plane_client.h"

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "control_plane/server/control_plane_service.h"
#include "control_plane/server/versioned_state.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/model_builders.h"

namespace sockmesh::agent {
namespace {

using ::sockmesh::testing::StateOf;

model::ServiceEntry Svc(const std::string& vip, const std::vector<std::string>& backends) {
  return ::sockmesh::testing::Port80Service(vip, backends);
}

TEST(BackoffDelayTest, GrowsWithJitterAndIsCapped) {
  std::mt19937 rng(42);
  const absl::Duration min = absl::Milliseconds(100);
  const absl::Duration max = absl::Seconds(10);
  for (int attempt = 0; attempt < 20; ++attempt) {
    absl::Duration full = std::min(max, min * (1 << std::min(attempt, 10)));
    for (int i = 0; i < 50; ++i) {
      absl::Duration d = BackoffDelay(attempt, min, max, rng);
      EXPECT_GE(d, full / 2) << attempt;
      EXPECT_LE(d, full) << attempt;
    }
  }
}

class ClientServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_NE(port_, 0);
  }
  void TearDown() override {
    stop_ = true;
    if (client_thread_.joinable()) client_thread_.join();
    service_.Shutdown();
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  }

  void StartClient() {
    client_ = std::make_unique<ControlPlaneClient>(
        ControlPlaneClientOptions{.address = absl::StrCat("127.0.0.1:", port_),
                                  .node_name = "node-a",
                                  .agent_version = "test"},
        [this](const model::DesiredState& s, const v1::CompiledPolicy&) -> absl::Status {
          absl::MutexLock lock(&mu_);
          ++applies_;
          if (s.contains(Svc("10.0.0.66", {}).frontend)) {
            return absl::ResourceExhaustedError("sm_lut_v1 is full");
          }
          applied_ = s;
          return absl::OkStatus();
        });
    client_thread_ = std::thread([this] { client_->Run(stop_); });
  }

  // Polls ListAgents until `pred` holds for the only agent, or 10 s pass.
  v1::AgentStatus WaitForAgent(std::function<bool(const v1::AgentStatus&)> pred) {
    v1::AgentStatus last;
    for (int i = 0; i < 200; ++i) {
      v1::ListAgentsResponse resp = service_.Agents();
      if (resp.agents_size() == 1) {
        last = resp.agents(0);
        if (pred(last)) return last;
      }
      absl::SleepFor(absl::Milliseconds(50));
    }
    ADD_FAILURE() << "agent never reached the expected state; last: " << last.DebugString();
    return last;
  }

  cp::VersionedState state_;
  cp::ControlPlaneService service_{&state_, nullptr};
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::unique_ptr<ControlPlaneClient> client_;
  std::thread client_thread_;
  absl::Mutex mu_;
  model::DesiredState applied_;
  int applies_ = 0;
};

TEST_F(ClientServerTest, AppliesAcksNacksAndRecovers) {
  state_.Update(StateOf({Svc("10.0.0.1", {"10.1.0.1"})}));  // version 2
  StartClient();
  WaitForAgent([](const v1::AgentStatus& a) { return a.last_acked_version() == 2; });
  {
    absl::MutexLock lock(&mu_);
    EXPECT_EQ(applied_, StateOf({Svc("10.0.0.1", {"10.1.0.1"})}));
  }

  // Version 3 adds a service the agent cannot write: NACKed, and the agent keeps version 2.
  state_.Update(StateOf({Svc("10.0.0.1", {"10.1.0.1"}), Svc("10.0.0.66", {"10.1.0.1"})}));
  v1::AgentStatus a =
      WaitForAgent([](const v1::AgentStatus& a) { return a.last_nacked_version() == 3; });
  EXPECT_EQ(a.last_acked_version(), 2u);
  EXPECT_THAT(a.last_nack_error(), ::testing::HasSubstr("sm_lut_v1 is full"));
  int applies_after_nack;
  {
    absl::MutexLock lock(&mu_);
    applies_after_nack = applies_;
  }
  // Not resent: no further apply while the state stays the same.
  absl::SleepFor(absl::Milliseconds(600));
  {
    absl::MutexLock lock(&mu_);
    EXPECT_EQ(applies_, applies_after_nack);
    EXPECT_EQ(applied_, StateOf({Svc("10.0.0.1", {"10.1.0.1"})}));
  }
  EXPECT_EQ(client_->good_version(), 2u);

  // Version 4 drops the bad service and changes the other: a delta from 2, ACKed.
  state_.Update(StateOf({Svc("10.0.0.1", {"10.1.0.2"})}));
  WaitForAgent([](const v1::AgentStatus& a) { return a.last_acked_version() == 4; });
  absl::MutexLock lock(&mu_);
  EXPECT_EQ(applied_, StateOf({Svc("10.0.0.1", {"10.1.0.2"})}));
}

// Workloads and the identity table reach the agent through the stream: in the snapshot, then as
// a delta when a workload changes.
TEST_F(ClientServerTest, WorkloadsAndIdentitiesArriveBySnapshotAndDelta) {
  model::Workload web{.namespace_name = "shop",
                      .name = "web-1",
                      .service_account = "web",
                      .ips = {model::IpAddress::Parse("10.1.0.5").value()},
                      .identity = 4096};
  model::DesiredState first = StateOf({Svc("10.0.0.1", {"10.1.0.1"})});
  first.workloads.workloads[web.key()] = web;
  first.workloads.identities[web.principal()] = 4096;
  state_.Update(first);  // version 2
  StartClient();
  WaitForAgent([](const v1::AgentStatus& a) { return a.last_acked_version() == 2; });
  {
    absl::MutexLock lock(&mu_);
    EXPECT_EQ(applied_, first);
  }
  model::DesiredState second = first;
  second.workloads.workloads[web.key()].ips = {model::IpAddress::Parse("10.1.0.6").value()};
  second.workloads.namespaces["shop"] = {{"team", "a"}};
  state_.Update(second);  // version 3: only workloads changed
  WaitForAgent([](const v1::AgentStatus& a) { return a.last_acked_version() == 3; });
  absl::MutexLock lock(&mu_);
  EXPECT_EQ(applied_, second);
}

}  // namespace
}  // namespace sockmesh::agent
