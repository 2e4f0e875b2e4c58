// SPDX-License-Identifier: Apache-2.0
// The control plane's per-agent protocol rules, and its versioned state.
#include "control_plane/server/agent_session.h"

#include <memory>
#include <string>

#include "control_plane/model/proto_conversion.h"
#include "control_plane/server/version_messages.h"
#include "control_plane/server/versioned_state.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/model_builders.h"

namespace sockmesh::cp {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1700000000);

using ::sockmesh::testing::StateOf;

model::ServiceEntry Svc(const std::string& vip, const std::vector<std::string>& backends) {
  return ::sockmesh::testing::Port80Service(vip, backends);
}

TEST(VersionedStateTest, VersionGrowsOnlyOnChange) {
  VersionedState state;
  EXPECT_EQ(state.Current().version, 1u);
  EXPECT_TRUE(state.Current().state->empty());
  EXPECT_FALSE(state.Update({}));
  EXPECT_EQ(state.Current().version, 1u);
  EXPECT_TRUE(state.Update(StateOf({Svc("10.0.0.1", {"10.1.0.1"})})));
  EXPECT_EQ(state.Current().version, 2u);
  EXPECT_FALSE(state.Update(StateOf({Svc("10.0.0.1", {"10.1.0.1"})})));
  EXPECT_EQ(state.Current().version, 2u);
  EXPECT_TRUE(state.Update({}));
  EXPECT_EQ(state.Current().version, 3u);
}

TEST(VersionedStateTest, WaitForChangeReturnsAtOnceWhenAlreadyNewer) {
  VersionedState state;
  state.Update(StateOf({Svc("10.0.0.1", {})}));
  EXPECT_EQ(state.WaitForChange(1, absl::Seconds(10)).version, 2u);
  EXPECT_EQ(state.WaitForChange(2, absl::Milliseconds(10)).version, 2u);
}

class AgentSessionTest : public ::testing::Test {
 protected:
  StateVersion Publish(model::DesiredState s) {
    state_.Update(std::move(s), kT0);
    return state_.Current();
  }
  VersionedState state_;
  AgentSession session_{"node-a", "0.1.0", kT0};
};

TEST_F(AgentSessionTest, FirstMessageIsSnapshotThenDeltasAgainstTheAck) {
  StateVersion v2 =
      Publish(StateOf({Svc("10.0.0.1", {"10.1.0.1"}), Svc("10.0.0.2", {"10.1.0.1"})}));
  auto first = session_.Next(v2, kT0);
  ASSERT_TRUE(first != nullptr);
  ASSERT_TRUE(first->has_snapshot());
  EXPECT_EQ(first->snapshot().version(), 2u);
  EXPECT_EQ(first->snapshot().services_size(), 2);
  // One version in flight at a time.
  StateVersion v3 =
      Publish(StateOf({Svc("10.0.0.1", {"10.1.0.9"}), Svc("10.0.0.2", {"10.1.0.1"})}));
  EXPECT_EQ(session_.Next(v3, kT0), nullptr);

  absl::StatusOr<absl::Duration> took = session_.OnAck(2, kT0 + absl::Milliseconds(5));
  ASSERT_TRUE(took.ok()) << took.status();
  EXPECT_EQ(*took, absl::Milliseconds(5));
  EXPECT_EQ(session_.status().last_acked_version(), 2u);

  auto second = session_.Next(v3, kT0);
  ASSERT_TRUE(second != nullptr);
  ASSERT_TRUE(second->has_delta());
  EXPECT_EQ(second->delta().base_version(), 2u);
  EXPECT_EQ(second->delta().version(), 3u);
  // Only the service that changed.
  ASSERT_EQ(second->delta().upserted_services_size(), 1);
  EXPECT_EQ(model::FromProto(second->delta().upserted_services(0).frontend())->ToString(),
            "10.0.0.1:80/TCP");
  EXPECT_EQ(second->delta().removed_frontends_size(), 0);
  ASSERT_TRUE(session_.OnAck(3, kT0).ok());

  // Removal.
  StateVersion v4 = Publish(StateOf({Svc("10.0.0.1", {"10.1.0.9"})}));
  auto third = session_.Next(v4, kT0);
  ASSERT_TRUE(third != nullptr && third->has_delta());
  EXPECT_EQ(third->delta().upserted_services_size(), 0);
  ASSERT_EQ(third->delta().removed_frontends_size(), 1);
  EXPECT_EQ(model::FromProto(third->delta().removed_frontends(0))->ToString(), "10.0.0.2:80/TCP");
  // Nothing more until the state changes.
  ASSERT_TRUE(session_.OnAck(4, kT0).ok());
  EXPECT_EQ(session_.Next(v4, kT0), nullptr);
}

TEST_F(AgentSessionTest, NackedVersionIsNotResentAndNextDeltaStartsFromLastAck) {
  StateVersion v2 = Publish(StateOf({Svc("10.0.0.1", {"10.1.0.1"})}));
  ASSERT_NE(session_.Next(v2, kT0), nullptr);
  ASSERT_TRUE(session_.OnAck(2, kT0).ok());

  StateVersion v3 =
      Publish(StateOf({Svc("10.0.0.1", {"10.1.0.1"}), Svc("10.0.0.2", {"10.1.0.2"})}));
  ASSERT_NE(session_.Next(v3, kT0), nullptr);
  ASSERT_TRUE(session_.OnNack(3, "map full", kT0).ok());
  EXPECT_EQ(session_.status().last_nacked_version(), 3u);
  EXPECT_EQ(session_.status().last_nack_error(), "map full");
  EXPECT_EQ(session_.status().last_acked_version(), 2u);
  // The same failing version is not sent again, however often the stream asks.
  EXPECT_EQ(session_.Next(v3, kT0), nullptr);
  EXPECT_EQ(session_.Next(state_.Current(), kT0), nullptr);

  // The next version is a delta against version 2 (what the agent runs), so it carries both.
  StateVersion v4 =
      Publish(StateOf({Svc("10.0.0.1", {"10.1.0.5"}), Svc("10.0.0.2", {"10.1.0.2"})}));
  auto next = session_.Next(v4, kT0);
  ASSERT_TRUE(next != nullptr && next->has_delta());
  EXPECT_EQ(next->delta().base_version(), 2u);
  EXPECT_EQ(next->delta().upserted_services_size(), 2);
  ASSERT_TRUE(session_.OnAck(4, kT0).ok());
  EXPECT_EQ(session_.status().last_acked_version(), 4u);
  // The NACK stays on record for `sockmeshctl status`.
  EXPECT_EQ(session_.status().last_nacked_version(), 3u);
}

TEST_F(AgentSessionTest, NackedSnapshotIsFollowedByASnapshot) {
  StateVersion v2 = Publish(StateOf({Svc("10.0.0.1", {"10.1.0.1"})}));
  ASSERT_NE(session_.Next(v2, kT0), nullptr);
  ASSERT_TRUE(session_.OnNack(2, "bad", kT0).ok());
  StateVersion v3 = Publish(StateOf({Svc("10.0.0.1", {"10.1.0.2"})}));
  auto next = session_.Next(v3, kT0);
  ASSERT_TRUE(next != nullptr);
  EXPECT_TRUE(next->has_snapshot());
}

TEST_F(AgentSessionTest, AnswersForOtherVersionsAreRefused) {
  EXPECT_FALSE(session_.OnAck(1, kT0).ok());  // nothing in flight
  StateVersion v2 = Publish(StateOf({Svc("10.0.0.1", {})}));
  ASSERT_NE(session_.Next(v2, kT0), nullptr);
  EXPECT_EQ(session_.OnAck(7, kT0).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(session_.OnNack(1, "x", kT0).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(session_.in_flight());
  EXPECT_EQ(session_.status().last_acked_version(), 0u);
}

TEST(VersionedStateTest, ChangedFrontendsListsAddedChangedAndRemoved) {
  model::DesiredState a = StateOf({Svc("10.0.0.1", {"10.1.0.1"}), Svc("10.0.0.2", {"10.1.0.1"}),
                                   Svc("10.0.0.3", {"10.1.0.1"})});
  model::DesiredState b = StateOf({Svc("10.0.0.1", {"10.1.0.1"}), Svc("10.0.0.2", {"10.1.0.2"}),
                                   Svc("10.0.0.4", {"10.1.0.1"})});
  std::vector<std::string> changed;
  for (const model::Frontend& f : ChangedFrontends(a, b)) changed.push_back(f.ToString());
  EXPECT_THAT(changed,
              ::testing::ElementsAre("10.0.0.2:80/TCP", "10.0.0.3:80/TCP", "10.0.0.4:80/TCP"));
}

// The delta from the previous version is built from the change list, not by comparing states; it
// must be the same message the comparison gives.
TEST(VersionMessagesTest, DeltaFromPreviousVersionEqualsTheFullComparison) {
  VersionedState state;
  state.Update(StateOf({Svc("10.0.0.1", {"10.1.0.1"}), Svc("10.0.0.2", {"10.1.0.1"}),
                        Svc("10.0.0.3", {"10.1.0.1"})}));
  StateVersion v2 = state.Current();
  state.Update(StateOf({Svc("10.0.0.1", {"10.1.0.1"}), Svc("10.0.0.2", {"10.1.0.2", "10.1.0.3"}),
                        Svc("10.0.0.4", {"10.1.0.1"})}));
  StateVersion v3 = state.Current();
  ASSERT_EQ(v3.version, 3u);
  std::shared_ptr<const v1::ServerMessage> delta = v3.messages->Delta(v2, v3);
  ASSERT_TRUE(delta->has_delta());
  EXPECT_EQ(delta->delta().SerializeAsString(),
            model::MakeDelta(2, *v2.state, 3, *v3.state).SerializeAsString());
  EXPECT_EQ(delta->delta().upserted_services_size(), 2);
  EXPECT_EQ(delta->delta().removed_frontends_size(), 1);
  // From an older base, by comparison.
  StateVersion v1{.version = 1, .state = std::make_shared<const model::DesiredState>()};
  EXPECT_EQ(v3.messages->Delta(v1, v3)->delta().upserted_services_size(), 3);
}

TEST(VersionMessagesTest, StreamsShareOneMessagePerVersion) {
  VersionedState state;
  state.Update(StateOf({Svc("10.0.0.1", {"10.1.0.1"})}), kT0);
  StateVersion v2 = state.Current();
  AgentSession a("node-a", "0.1.0", kT0), b("node-b", "0.1.0", kT0);
  std::shared_ptr<const v1::ServerMessage> to_a = a.Next(v2, kT0);
  EXPECT_EQ(to_a, b.Next(v2, kT0));
  ASSERT_TRUE(a.OnAck(2, kT0).ok());
  ASSERT_TRUE(b.OnAck(2, kT0).ok());
  state.Update(StateOf({Svc("10.0.0.1", {"10.1.0.2"})}), kT0);
  StateVersion v3 = state.Current();
  std::shared_ptr<const v1::ServerMessage> delta_a = a.Next(v3, kT0);
  ASSERT_TRUE(delta_a != nullptr && delta_a->has_delta());
  EXPECT_EQ(delta_a, b.Next(v3, kT0));
}

// Push latency runs from the version's creation, or from the stream's start for an agent that
// connects later (its wait for the snapshot is not the version's age).
TEST(AgentSessionLatencyTest, FromCreationOrFromConnect) {
  VersionedState state;
  state.Update(StateOf({Svc("10.0.0.1", {"10.1.0.1"})}), kT0);
  AgentSession late("node-late", "0.1.0", kT0 + absl::Seconds(60));
  ASSERT_NE(late.Next(state.Current(), kT0 + absl::Seconds(60)), nullptr);
  EXPECT_EQ(*late.OnAck(2, kT0 + absl::Seconds(61)), absl::Seconds(1));
  state.Update(StateOf({Svc("10.0.0.1", {"10.1.0.2"})}), kT0 + absl::Seconds(100));
  ASSERT_NE(late.Next(state.Current(), kT0 + absl::Seconds(100.5)), nullptr);
  // Sent 0.5 s after the version was made: that wait counts too.
  EXPECT_EQ(*late.OnAck(3, kT0 + absl::Seconds(101)), absl::Seconds(1));
}

}  // namespace
}  // namespace sockmesh::cp
