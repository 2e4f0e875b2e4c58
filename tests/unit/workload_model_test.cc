// SPDX-License-Identifier: Apache-2.0
// Workload identities: allocation (reserved numbers, stability, collisions), the join from parsed
// objects, and the wire form (snapshot round trip, deltas, validation of what a peer sends).
#include <map>
#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "control_plane/model/identity_allocator.h"
#include "control_plane/model/proto_conversion.h"
#include "control_plane/model/workload_conversion.h"
#include "control_plane/sources/manifest_parser.h"
#include "control_plane/sources/workload_builder.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sockmesh {
namespace {

using model::AllocateIdentities;
using model::PreferredIdentity;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

model::IpAddress Ip(std::string_view text) { return model::IpAddress::Parse(text).value(); }

// Two principals with the same preferred number, found by search (the hash is fixed, so the pair
// is the same on every run).
std::pair<std::string, std::string> CollidingPrincipals() {
  std::map<uint32_t, std::string> seen;
  for (int i = 0;; ++i) {
    std::string p = model::Principal("ns", absl::StrCat("sa-", i));
    auto [it, inserted] = seen.emplace(PreferredIdentity(p), p);
    if (!inserted) return {std::min(it->second, p), std::max(it->second, p)};
  }
}

TEST(IdentityAllocatorTest, PrincipalFormatAndReservedNumbers) {
  EXPECT_EQ(model::Principal("shop", "web"), "cluster.local/ns/shop/sa/web");
  for (int i = 0; i < 1000; ++i) {
    uint32_t id = PreferredIdentity(absl::StrCat("p", i));
    EXPECT_GE(id, model::kFirstAllocatedIdentity);
    EXPECT_LT(id, model::kIdentitySpace);
  }
}

TEST(IdentityAllocatorTest, SameNumbersWithoutHistoryAndUnmovedByOthers) {
  std::set<std::string> principals;
  for (int i = 0; i < 200; ++i) principals.insert(model::Principal("ns", absl::StrCat("sa", i)));
  auto first = AllocateIdentities(principals, {});
  // A restarted control plane (no history) computes the same numbers.
  EXPECT_EQ(AllocateIdentities(principals, {}), first);
  // Removing and adding other principals leaves the rest where they were.
  std::set<std::string> changed = principals;
  changed.erase(model::Principal("ns", "sa7"));
  changed.insert(model::Principal("other", "new"));
  auto second = AllocateIdentities(changed, first);
  for (const auto& [p, id] : second) {
    if (first.contains(p)) EXPECT_EQ(id, first.at(p)) << p;
  }
  std::set<uint32_t> distinct;
  for (const auto& [p, id] : second) distinct.insert(id);
  EXPECT_EQ(distinct.size(), second.size());
}

TEST(IdentityAllocatorTest, CollisionsProbeAndSurvivorsKeepTheirNumber) {
  auto [a, b] = CollidingPrincipals();
  const uint32_t preferred = PreferredIdentity(a);
  auto both = AllocateIdentities({a, b}, {});
  EXPECT_EQ(both.at(a), preferred);  // first in principal order
  EXPECT_EQ(both.at(b), preferred + 1);
  // a leaves: b keeps its number while it exists...
  auto only_b = AllocateIdentities({b}, both);
  EXPECT_EQ(only_b.at(b), preferred + 1);
  // ...and when a comes back it cannot take b's number.
  auto back = AllocateIdentities({a, b}, only_b);
  EXPECT_EQ(back.at(b), preferred + 1);
  EXPECT_EQ(back.at(a), preferred);
  // b alone with no history: its preferred number.
  EXPECT_EQ(AllocateIdentities({b}, {}).at(b), preferred);
}

TEST(IdentityAllocatorTest, HistoryOutsideTheRangeOrDuplicatedIsNotTrusted) {
  auto out = AllocateIdentities({"x", "y"}, {{"x", 1}, {"y", 1}});
  EXPECT_EQ(out.at("x"), PreferredIdentity("x"));
  EXPECT_EQ(out.at("y"), PreferredIdentity("y"));
}

// ---- Builder --------------------------------------------------------------------------------

sources::ParsedManifests ParseOrDie(std::string_view yaml) {
  absl::StatusOr<sources::ParsedManifests> parsed = sources::ParseManifests(yaml, "w.yaml");
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  return parsed.ok() ? *parsed : sources::ParsedManifests();
}

constexpr std::string_view kObjects = R"(
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {team: a}}
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: shop, labels: {app: web}}
spec: {serviceAccountName: web, nodeName: node-a}
status: {podIP: 10.1.0.5}
---
apiVersion: v1
kind: Pod
metadata: {name: web-2, namespace: shop}
spec: {serviceAccountName: web}
status: {podIP: 10.1.0.6}
---
apiVersion: v1
kind: Pod
metadata: {name: orphan, namespace: nowhere}
spec: {}
---
apiVersion: sockmesh.io/v1alpha1
kind: WorkloadEntry
metadata: {name: client, namespace: shop}
spec: {serviceAccount: client}
)";

TEST(WorkloadBuilderTest, WorkloadsIdentitiesAndNamespaces) {
  absl::StatusOr<model::WorkloadState> state = sources::BuildWorkloads(ParseOrDie(kObjects), {});
  ASSERT_TRUE(state.ok()) << state.status();
  ASSERT_THAT(state->workloads, SizeIs(4));
  EXPECT_THAT(state->identities, SizeIs(3));
  const model::Workload& web1 = state->workloads.at({"shop", "web-1"});
  EXPECT_EQ(web1.kind, model::WorkloadKind::kPod);
  EXPECT_EQ(web1.principal(), "cluster.local/ns/shop/sa/web");
  EXPECT_EQ(web1.node_name, "node-a");
  EXPECT_EQ(web1.identity, state->workloads.at({"shop", "web-2"}).identity);
  // A Pod in a namespace nobody declared is still a workload.
  EXPECT_EQ(state->workloads.at({"nowhere", "orphan"}).principal(),
            "cluster.local/ns/nowhere/sa/default");
  EXPECT_EQ(state->namespaces.at("shop").at("team"), "a");
  EXPECT_FALSE(state->namespaces.contains("nowhere"));
  EXPECT_TRUE(model::CheckWorkloadState(*state).ok());
}

TEST(WorkloadBuilderTest, DuplicateNamesAcrossKindsAreRefused) {
  sources::ParsedManifests objects = ParseOrDie(kObjects);
  sources::ParsedManifests more = ParseOrDie(R"(
apiVersion: sockmesh.io/v1alpha1
kind: WorkloadEntry
metadata: {name: web-1, namespace: shop}
spec: {}
)");
  more.workload_entries[0].source = "other.yaml";
  sources::AppendManifests(more, objects);
  absl::StatusOr<model::WorkloadState> state = sources::BuildWorkloads(objects, {});
  ASSERT_FALSE(state.ok());
  EXPECT_EQ(state.status().message(),
            "workload shop/web-1 is defined twice: Pod shop/web-1 (w.yaml) and WorkloadEntry "
            "shop/web-1 (other.yaml)");
}

TEST(WorkloadBuilderTest, NumbersStayWhenOtherPrincipalsComeAndGo) {
  absl::StatusOr<model::WorkloadState> first = sources::BuildWorkloads(ParseOrDie(kObjects), {});
  ASSERT_TRUE(first.ok());
  sources::ParsedManifests objects = ParseOrDie(kObjects);
  objects.workload_entries.clear();  // the client principal leaves
  absl::StatusOr<model::WorkloadState> second = sources::BuildWorkloads(objects, first->identities);
  ASSERT_TRUE(second.ok());
  EXPECT_FALSE(second->identities.contains("cluster.local/ns/shop/sa/client"));
  EXPECT_EQ(second->identities.at("cluster.local/ns/shop/sa/web"),
            first->identities.at("cluster.local/ns/shop/sa/web"));
}

// ---- Wire form ------------------------------------------------------------------------------

model::DesiredState StateFrom(std::string_view yaml) {
  absl::StatusOr<model::DesiredState> state =
      sources::BuildDesiredState(ParseOrDie(yaml), model::DesiredState());
  EXPECT_TRUE(state.ok()) << state.status();
  return state.ok() ? *state : model::DesiredState();
}

TEST(WorkloadConversionTest, SnapshotRoundTrip) {
  model::DesiredState state = StateFrom(kObjects);
  state.workloads.workloads.at({"shop", "web-1"}).ips.push_back(Ip("fd00::5"));
  v1::Snapshot snapshot = model::MakeSnapshot(3, state);
  EXPECT_EQ(snapshot.workloads_size(), 4);
  EXPECT_EQ(snapshot.identities_size(), 3);
  absl::StatusOr<model::DesiredState> back = model::FromSnapshot(snapshot);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, state);
}

TEST(WorkloadConversionTest, DeltaCarriesOnlyChangesAndRebuildsTheTarget) {
  model::DesiredState base = StateFrom(kObjects);
  model::DesiredState target = StateFrom(std::string(kObjects) + R"(
---
apiVersion: sockmesh.io/v1alpha1
kind: WorkloadEntry
metadata: {name: vm, namespace: legacy}
spec: {address: 10.2.0.1, serviceAccount: billing}
)");
  target.workloads.workloads.erase({"nowhere", "orphan"});
  target.workloads.identities.erase("cluster.local/ns/nowhere/sa/default");
  target.workloads.namespaces["shop"]["team"] = "b";

  v1::Delta delta = model::MakeDelta(1, base, 2, target);
  EXPECT_EQ(delta.upserted_workloads_size(), 1);
  EXPECT_EQ(delta.upserted_workloads(0).name(), "vm");
  ASSERT_EQ(delta.removed_workloads_size(), 1);
  EXPECT_EQ(delta.removed_workloads(0).name(), "orphan");
  ASSERT_EQ(delta.upserted_identities_size(), 1);
  EXPECT_EQ(delta.upserted_identities(0).principal(), "cluster.local/ns/legacy/sa/billing");
  ASSERT_EQ(delta.removed_principals_size(), 1);
  EXPECT_EQ(delta.upserted_namespaces_size(), 1);

  model::DesiredState applied = base;
  ASSERT_TRUE(model::ApplyDelta(delta, applied).ok());
  EXPECT_EQ(applied, target);
  v1::Delta none = model::MakeDelta(2, target, 3, target);
  EXPECT_EQ(none.upserted_workloads_size() + none.removed_workloads_size() +
                none.upserted_identities_size() + none.removed_principals_size() +
                none.upserted_namespaces_size() + none.removed_namespaces_size(),
            0);
}

TEST(WorkloadConversionTest, InconsistentMessagesAreRefused) {
  model::DesiredState state = StateFrom(kObjects);
  v1::Snapshot good = model::MakeSnapshot(1, state);

  v1::Snapshot wrong_principal = good;
  wrong_principal.mutable_workloads(0)->set_principal("cluster.local/ns/x/sa/y");
  EXPECT_THAT(model::FromSnapshot(wrong_principal).status().message(),
              HasSubstr("principal \"cluster.local/ns/x/sa/y\" is not"));

  v1::Snapshot reserved = good;
  reserved.mutable_workloads(0)->set_identity(1);
  EXPECT_THAT(model::FromSnapshot(reserved).status().message(),
              HasSubstr("identity 1 is not in 256..16777215"));

  v1::Snapshot mismatch = good;
  mismatch.mutable_workloads(0)->set_identity(good.workloads(0).identity() + 1);
  EXPECT_THAT(model::FromSnapshot(mismatch).status().message(), HasSubstr(" but "));

  v1::Snapshot shared = good;
  for (auto& row : *shared.mutable_identities()) row.set_identity(300);
  EXPECT_FALSE(model::FromSnapshot(shared).ok());

  v1::Snapshot bad_ip = good;
  bad_ip.mutable_workloads(0)->add_ips()->set_bytes("abc");
  EXPECT_THAT(model::FromSnapshot(bad_ip).status().message(), HasSubstr("ips["));

  v1::Delta dangling;
  dangling.set_version(2);
  dangling.add_removed_principals("cluster.local/ns/shop/sa/web");
  model::DesiredState copy = state;
  EXPECT_THAT(model::ApplyDelta(dangling, copy).message(),
              HasSubstr("is not in the identity table"));
}

}  // namespace
}  // namespace sockmesh
