// SPDX-License-Identifier: Apache-2.0
// The model <-> sockmesh.v1 conversion: round trips, validation of what a peer sends, and deltas
// that carry only what changed.
#include "control_plane/model/proto_conversion.h"

#include <string>
#include <vector>

#include "control_plane/model/delta_apply.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sockmesh::model {
namespace {

using ::testing::HasSubstr;

IpAddress Ip(const std::string& text) { return *IpAddress::Parse(text); }

ServiceEntry Svc(const std::string& vip, uint16_t port, std::vector<std::string> backends,
                 LbAlgorithm algorithm = LbAlgorithm::kRandom) {
  ServiceEntry e;
  e.namespace_name = "ns";
  e.service_name = absl::StrCat("svc-", port);
  e.port_name = "http";
  e.frontend = {.vip = Ip(vip), .port = port, .protocol = Protocol::kTcp};
  e.algorithm = algorithm;
  for (const std::string& b : backends) {
    e.backends.push_back({.address = Ip(b), .port = 8080, .weight = 1});
  }
  std::sort(e.backends.begin(), e.backends.end());
  return e;
}

DesiredState State(std::vector<ServiceEntry> entries) {
  DesiredState s;
  for (ServiceEntry& e : entries) s[e.frontend] = std::move(e);
  return s;
}

TEST(ProtoConversionTest, ServiceRoundTripKeepsEveryField) {
  ServiceEntry e = Svc("10.0.0.1", 80, {"10.1.0.2", "10.1.0.1"}, LbAlgorithm::kMaglev);
  e.frontend.protocol = Protocol::kUdp;
  e.affinity = SessionAffinity::kClientIP;
  e.affinity_timeout_seconds = 60;
  e.backends[1].weight = 7;
  absl::StatusOr<ServiceEntry> back = FromProto(ToProto(e));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, e);
}

TEST(ProtoConversionTest, LeastConnectionsAndConnectionLimitRoundTrip) {
  ServiceEntry e = Svc("10.0.0.1", 80, {"10.1.0.1"}, LbAlgorithm::kLeastConnections);
  e.max_connections_per_backend = 65535;
  v1::Service proto = ToProto(e);
  EXPECT_EQ(proto.algorithm(), v1::LB_ALGORITHM_LEAST_CONNECTIONS);
  EXPECT_EQ(proto.max_connections_per_backend(), 65535u);
  absl::StatusOr<ServiceEntry> back = FromProto(proto);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, e);

  proto.set_max_connections_per_backend(65536);
  EXPECT_THAT(FromProto(proto).status().message(),
              HasSubstr("max_connections_per_backend 65536 is not in 0..65535"));
}

TEST(ProtoConversionTest, Ipv6RoundTrip) {
  ServiceEntry e = Svc("fd00::1", 443, {"fd00::10", "fd00::11"});
  absl::StatusOr<ServiceEntry> back = FromProto(ToProto(e));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, e);
  EXPECT_EQ(ToProto(e).frontend().vip().bytes().size(), 16u);
}

TEST(ProtoConversionTest, SnapshotRoundTrip) {
  DesiredState s = State({Svc("10.0.0.1", 80, {"10.1.0.1"}), Svc("10.0.0.2", 81, {})});
  v1::Snapshot snap = MakeSnapshot(7, s);
  EXPECT_EQ(snap.version(), 7u);
  EXPECT_TRUE(snap.has_policy());
  absl::StatusOr<DesiredState> back = FromSnapshot(snap);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, s);
}

TEST(ProtoConversionTest, RejectsMalformedFields) {
  v1::Service ok = ToProto(Svc("10.0.0.1", 80, {"10.1.0.1"}));

  v1::Service bad_vip = ok;
  bad_vip.mutable_frontend()->mutable_vip()->set_bytes("abc");
  EXPECT_THAT(FromProto(bad_vip).status().message(), HasSubstr("3 bytes"));

  v1::Service bad_port = ok;
  bad_port.mutable_frontend()->set_port(70000);
  EXPECT_THAT(FromProto(bad_port).status().message(), HasSubstr("frontend.port"));

  v1::Service bad_weight = ok;
  bad_weight.mutable_backends(0)->set_weight(0);
  EXPECT_THAT(FromProto(bad_weight).status().message(), HasSubstr("weight 0"));

  v1::Service bad_algo = ok;
  bad_algo.set_algorithm(static_cast<v1::LbAlgorithm>(9));
  EXPECT_THAT(FromProto(bad_algo).status().message(), HasSubstr("unknown algorithm"));
}

TEST(ProtoConversionTest, NotReadyBackendsAreDropped) {
  v1::Service s = ToProto(Svc("10.0.0.1", 80, {"10.1.0.1", "10.1.0.2"}));
  s.mutable_backends(1)->set_ready(false);
  absl::StatusOr<ServiceEntry> e = FromProto(s);
  ASSERT_TRUE(e.ok()) << e.status();
  ASSERT_EQ(e->backends.size(), 1u);
  EXPECT_EQ(e->backends[0].address, Ip("10.1.0.1"));
}

TEST(ProtoConversionTest, SnapshotWithDuplicateFrontendIsRejected) {
  v1::Snapshot snap = MakeSnapshot(1, State({Svc("10.0.0.1", 80, {})}));
  *snap.add_services() = snap.services(0);
  EXPECT_THAT(FromSnapshot(snap).status().message(), HasSubstr("twice"));
}

TEST(ProtoConversionTest, DeltaCarriesOnlyChangedServices) {
  DesiredState base = State({Svc("10.0.0.1", 80, {"10.1.0.1"}), Svc("10.0.0.2", 80, {"10.1.0.1"}),
                             Svc("10.0.0.3", 80, {"10.1.0.1"})});
  DesiredState target = base;
  target.erase(Svc("10.0.0.3", 80, {}).frontend);                   // removed
  target[Svc("10.0.0.2", 80, {}).frontend].backends[0].weight = 5;  // changed
  ServiceEntry added = Svc("10.0.0.4", 80, {"10.1.0.9"});
  target[added.frontend] = added;  // added; 10.0.0.1 unchanged

  v1::Delta d = MakeDelta(3, base, 4, target);
  EXPECT_EQ(d.version(), 4u);
  EXPECT_EQ(d.base_version(), 3u);
  std::vector<std::string> upserted;
  for (const v1::Service& s : d.upserted_services()) {
    upserted.push_back(FromProto(s.frontend())->ToString());
  }
  EXPECT_THAT(upserted, ::testing::ElementsAre("10.0.0.2:80/TCP", "10.0.0.4:80/TCP"));
  ASSERT_EQ(d.removed_frontends_size(), 1);
  EXPECT_EQ(FromProto(d.removed_frontends(0))->ToString(), "10.0.0.3:80/TCP");

  DesiredState applied = base;
  ASSERT_TRUE(ApplyDelta(d, applied).ok());
  EXPECT_EQ(applied, target);
}

TEST(ProtoConversionTest, DeltaOfEqualStatesIsEmpty) {
  DesiredState s = State({Svc("10.0.0.1", 80, {"10.1.0.1"})});
  v1::Delta d = MakeDelta(1, s, 2, s);
  EXPECT_EQ(d.upserted_services_size(), 0);
  EXPECT_EQ(d.removed_frontends_size(), 0);
}

// The agent follows deltas in place; a version its datapath refuses is reverted exactly.
TEST(DeltaApplyTest, AppliedInPlaceAndRevertedToTheSameState) {
  DesiredState base = State({Svc("10.0.0.1", 80, {"10.1.0.1"}), Svc("10.0.0.2", 80, {"10.1.0.1"}),
                             Svc("10.0.0.3", 80, {"10.1.0.1"})});
  DesiredState target = base;
  target.erase(Svc("10.0.0.3", 80, {}).frontend);
  target[Svc("10.0.0.2", 80, {}).frontend].backends[0].weight = 5;
  ServiceEntry added = Svc("10.0.0.4", 80, {"10.1.0.9"});
  target[added.frontend] = added;
  v1::Delta d = MakeDelta(3, base, 4, target);
  // A frontend both removed and upserted is undone to its first form.
  *d.add_removed_frontends() = ToProto(Svc("10.0.0.4", 80, {}).frontend);

  absl::StatusOr<DecodedDelta> decoded = DecodeDelta(d, base);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  DesiredState state = base;
  DeltaUndo undo = ApplyDecodedDelta(*std::move(decoded), state);
  EXPECT_EQ(state, target);
  RevertDelta(std::move(undo), state);
  EXPECT_EQ(state, base);
}

TEST(DeltaApplyTest, InvalidDeltaLeavesTheStateUnchanged) {
  DesiredState base = State({Svc("10.0.0.1", 80, {"10.1.0.1"})});
  DesiredState target = State({Svc("10.0.0.2", 80, {"10.1.0.1"})});
  v1::Delta d = MakeDelta(1, base, 2, target);
  d.add_upserted_services()->mutable_frontend()->set_port(0);  // after a valid upsert
  DesiredState state = base;
  EXPECT_THAT(std::string(ApplyDelta(d, state).message()), HasSubstr("frontend.vip"));
  EXPECT_EQ(state, base);
}

}  // namespace
}  // namespace sockmesh::model
