// SPDX-License-Identifier: Apache-2.0
// The control plane's gRPC service on the callback API, through real streams on loopback: many
// agents at once, the bound on snapshots in flight, the Hello check, ListAgents, and shutdown with
// agents still connected. Plus its two building blocks: serialized messages shared between
// streams, and the queue of streams waiting for a snapshot slot.
#include "control_plane/server/control_plane_service.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "control_plane/server/serialized_messages.h"
#include "control_plane/server/snapshot_slots.h"
#include "control_plane/server/versioned_state.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/model_builders.h"

namespace sockmesh::cp {
namespace {

using ::sockmesh::testing::StateOf;

model::ServiceEntry Svc(const std::string& vip, const std::vector<std::string>& backends) {
  return ::sockmesh::testing::Port80Service(vip, backends);
}

class ServiceTest : public ::testing::Test {
 protected:
  void StartServer(int max_concurrent_snapshots) {
    service_ = std::make_unique<ControlPlaneService>(&state_, nullptr, max_concurrent_snapshots);
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_NE(port_, 0);
  }
  void TearDown() override {
    if (server_ == nullptr) return;
    service_->Shutdown();
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  }
  std::unique_ptr<v1::ControlPlane::Stub> NewStub() {
    return v1::ControlPlane::NewStub(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", port_), grpc::InsecureChannelCredentials()));
  }
  static v1::AgentMessage Hello(const std::string& node) {
    v1::AgentMessage m;
    m.mutable_hello()->set_node_name(node);
    m.mutable_hello()->set_agent_version("test");
    return m;
  }
  static v1::AgentMessage Ack(uint64_t version) {
    v1::AgentMessage m;
    m.mutable_ack()->set_version(version);
    return m;
  }
  // Polls ListAgents (the RPC) until `pred` holds, or 10 s pass.
  v1::ListAgentsResponse WaitForAgents(std::function<bool(const v1::ListAgentsResponse&)> pred) {
    auto stub = NewStub();
    v1::ListAgentsResponse resp;
    for (int i = 0; i < 200; ++i) {
      grpc::ClientContext ctx;
      resp.Clear();
      grpc::Status s = stub->ListAgents(&ctx, v1::ListAgentsRequest(), &resp);
      if (s.ok() && pred(resp)) return resp;
      absl::SleepFor(absl::Milliseconds(50));
    }
    ADD_FAILURE() << "ListAgents never matched; last: " << resp.DebugString();
    return resp;
  }

  VersionedState state_;
  std::unique_ptr<ControlPlaneService> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

TEST_F(ServiceTest, FirstMessageMustBeHello) {
  StartServer(16);
  auto stub = NewStub();
  grpc::ClientContext ctx;
  auto stream = stub->Stream(&ctx);
  ASSERT_TRUE(stream->Write(Ack(1)));
  stream->WritesDone();
  v1::ServerMessage msg;
  EXPECT_FALSE(stream->Read(&msg));
  grpc::Status status = stream->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), ::testing::HasSubstr("Hello"));
}

// 24 agents connect at once to a service allowed 3 snapshots in flight: each gets the snapshot
// (never more than 3 unanswered at a time, though every agent sits on its snapshot for a while),
// then the next version as a delta from the one it ACKed, written to all of them by the fan-out.
TEST_F(ServiceTest, ManyAgentsSnapshotsBoundedThenDeltas) {
  state_.Update(StateOf({Svc("10.0.0.1", {"10.1.0.1"})}));  // version 2
  constexpr int kMaxSnapshots = 3;
  constexpr int kAgents = 24;
  StartServer(kMaxSnapshots);
  std::atomic<int> holding_snapshot{0};
  std::atomic<int> most_holding{0};
  std::atomic<int> snapshots_acked{0};
  std::atomic<int> deltas_ok{0};
  std::vector<std::thread> agents;
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  for (int i = 0; i < kAgents; ++i) contexts.push_back(std::make_unique<grpc::ClientContext>());
  for (int i = 0; i < kAgents; ++i) {
    agents.emplace_back([&, i] {
      auto stub = NewStub();
      auto stream = stub->Stream(contexts[i].get());
      if (!stream->Write(Hello(absl::StrCat("node-", i)))) return;
      v1::ServerMessage msg;
      if (!stream->Read(&msg) || !msg.has_snapshot()) return;
      int now = ++holding_snapshot;
      int seen = most_holding.load();
      while (now > seen && !most_holding.compare_exchange_weak(seen, now)) {
      }
      absl::SleepFor(absl::Milliseconds(30));  // parsing a large snapshot takes a while
      --holding_snapshot;
      if (!stream->Write(Ack(msg.snapshot().version()))) return;
      ++snapshots_acked;
      if (!stream->Read(&msg)) return;
      if (msg.has_delta() && msg.delta().base_version() == 2 && msg.delta().version() == 3 &&
          msg.delta().upserted_services_size() == 1) {
        ++deltas_ok;
      }
      stream->Write(Ack(msg.delta().version()));
      // Stays connected until the test ends the stream.
      while (stream->Read(&msg)) {
      }
      stream->Finish();
    });
  }
  WaitForAgents([&](const v1::ListAgentsResponse& r) {
    return r.agents_size() == kAgents &&
           std::all_of(r.agents().begin(), r.agents().end(),
                       [](const v1::AgentStatus& a) { return a.last_acked_version() == 2; });
  });
  EXPECT_EQ(snapshots_acked.load(), kAgents);
  EXPECT_LE(most_holding.load(), kMaxSnapshots);
  EXPECT_GE(most_holding.load(), 1);

  state_.Update(StateOf({Svc("10.0.0.1", {"10.1.0.2"})}));  // version 3
  v1::ListAgentsResponse r = WaitForAgents([&](const v1::ListAgentsResponse& r) {
    return r.current_version() == 3 && r.agents_size() == kAgents &&
           std::all_of(r.agents().begin(), r.agents().end(),
                       [](const v1::AgentStatus& a) { return a.last_acked_version() == 3; });
  });
  EXPECT_EQ(deltas_ok.load(), kAgents);
  EXPECT_EQ(r.agents(0).node_name().rfind("node-", 0), 0u);

  for (auto& c : contexts) c->TryCancel();
  for (auto& t : agents) t.join();
  WaitForAgents([](const v1::ListAgentsResponse& r) { return r.agents_size() == 0; });
}

// Shutdown ends streams whose agents are still connected and waiting, at once: the agent sees the
// stream close (and would reconnect), and the server's own Shutdown does not wait its deadline.
TEST_F(ServiceTest, ShutdownEndsOpenStreamsPromptly) {
  StartServer(16);
  auto stub = NewStub();
  grpc::ClientContext ctx;
  auto stream = stub->Stream(&ctx);
  ASSERT_TRUE(stream->Write(Hello("node-a")));
  v1::ServerMessage msg;
  ASSERT_TRUE(stream->Read(&msg));
  ASSERT_TRUE(msg.has_snapshot());
  ASSERT_TRUE(stream->Write(Ack(msg.snapshot().version())));
  WaitForAgents([](const v1::ListAgentsResponse& r) {
    return r.agents_size() == 1 && r.agents(0).last_acked_version() == 1;
  });

  absl::Time start = absl::Now();
  std::thread reader([&] {
    v1::ServerMessage m;
    while (stream->Read(&m)) {
    }
  });
  service_->Shutdown();
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  server_ = nullptr;
  reader.join();
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  EXPECT_TRUE(stream->Finish().ok());
}

TEST(SerializedMessagesTest, OneSerializationPerMessageDroppedWithIt) {
  SerializedMessages serialized;
  auto msg = std::make_shared<v1::ServerMessage>();
  msg->mutable_delta()->set_version(7);
  msg->mutable_delta()->set_base_version(6);
  // Large enough for a reference-counted slice (gRPC copies tiny messages inline).
  msg->mutable_delta()->add_upserted_services()->set_name(std::string(4096, 'x'));
  grpc::ByteBuffer a = serialized.Get(msg);
  grpc::ByteBuffer b = serialized.Get(msg);
  std::vector<grpc::Slice> sa, sb;
  ASSERT_TRUE(a.Dump(&sa).ok());
  ASSERT_TRUE(b.Dump(&sb).ok());
  ASSERT_EQ(sa.size(), 1u);
  ASSERT_EQ(sb.size(), 1u);
  // The same bytes, not a second serialization of the same message.
  EXPECT_EQ(sa[0].begin(), sb[0].begin());
  v1::ServerMessage parsed;
  ASSERT_TRUE(parsed.ParseFromArray(sa[0].begin(), static_cast<int>(sa[0].size())));
  EXPECT_EQ(parsed.delta().version(), 7u);
  EXPECT_EQ(serialized.size(), 1u);
  msg.reset();
  EXPECT_EQ(serialized.size(), 0u);
}

TEST(SnapshotSlotsTest, WaitersGetFreedSlotsInOrderSkippingGoneOnes) {
  SnapshotSlots<int> slots(1);
  auto a = std::make_shared<int>(1);
  auto b = std::make_shared<int>(2);
  auto c = std::make_shared<int>(3);
  EXPECT_TRUE(slots.AcquireOrQueue(a));
  EXPECT_FALSE(slots.AcquireOrQueue(b));
  EXPECT_FALSE(slots.AcquireOrQueue(c));
  b.reset();                      // a stream that ended while it waited
  EXPECT_EQ(slots.Release(), c);  // the slot is c's now
  EXPECT_EQ(slots.free(), 0);
  EXPECT_EQ(slots.Release(), nullptr);
  EXPECT_EQ(slots.free(), 1);
}

}  // namespace
}  // namespace sockmesh::cp
