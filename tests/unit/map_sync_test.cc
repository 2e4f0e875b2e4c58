// SPDX-License-Identifier: Apache-2.0
// MapSync against in-memory maps: what it writes, what it leaves alone, how it recovers.
#include "userspace/agent/map_sync.h"

#include <arpa/inet.h>

#include <set>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/support/fake_map.h"

namespace sockmesh::agent {
namespace {

using testing::FakeMap;

model::Backend Be(const std::string& ip, uint16_t port, uint32_t weight = 1) {
  return {.address = *model::IpAddress::Parse(ip), .port = port, .weight = weight};
}

model::ServiceEntry Svc(const std::string& vip, uint16_t port, std::vector<model::Backend> bes,
                        model::LbAlgorithm algo = model::LbAlgorithm::kRandom) {
  model::ServiceEntry e;
  e.frontend = {
      .vip = *model::IpAddress::Parse(vip), .port = port, .protocol = model::Protocol::kTcp};
  e.algorithm = algo;
  e.backends = std::move(bes);
  return e;
}

class MapSyncTest : public ::testing::Test {
 protected:
  ServiceMaps maps() {
    return {.services = &svc_,
            .backends = &be_,
            .lut = &lut_,
            .conns = &conns_,
            .outlier_config = &outlier_cfg_,
            .outliers = &outliers_,
            .ejections = &ejections_};
  }
  MapSync Recover() {
    auto s = MapSync::Recover(maps(), 251);
    EXPECT_TRUE(s.ok()) << s.status();
    return *std::move(s);
  }
  void Put(model::DesiredState& st, model::ServiceEntry e) { st[e.frontend] = std::move(e); }
  sm_svc SvcValue(const std::string& vip, uint16_t port) {
    model::Frontend f{.vip = *model::IpAddress::Parse(vip), .port = port};
    auto v = svc_.Lookup(ToSvcKey(f));
    EXPECT_TRUE(v.ok());
    return v.ok() ? *v : sm_svc{};
  }
  void ResetCounts() {
    svc_.ResetCounts();
    be_.ResetCounts();
    lut_.ResetCounts();
  }
  int Writes() { return svc_.updates + be_.updates + lut_.updates; }

  FakeMap<sm_svc_key, sm_svc> svc_{"sm_svc_v1", 100};
  FakeMap<sm_be_key, sm_backend> be_{"sm_be_v1", 100};
  FakeMap<sm_lut_key, uint32_t> lut_{"sm_lut_v1", 2000};
  FakeMap<sm_be_conn_key, uint64_t> conns_{"sm_be_conns_v1", 100};
  FakeMap<uint32_t, sm_outlier_cfg> outlier_cfg_{"sm_outlier_cfg_v1", 100};
  FakeMap<sm_be_conn_key, sm_be_outlier> outliers_{"sm_be_outlier_v1", 100};
  FakeMap<uint32_t, sm_svc_ejections> ejections_{"sm_svc_ejected_v1", 100};
};

// The backend ids in LUT slots [first, first + n) of the service's current revision.
std::vector<uint32_t> Slots(FakeMap<sm_lut_key, uint32_t>& lut, const sm_svc& v, uint32_t first,
                            uint32_t n) {
  std::vector<uint32_t> ids;
  for (uint32_t slot = first; slot < first + n; ++slot) {
    auto id = lut.Lookup(sm_lut_key{.svc_id = v.svc_id, .rev = v.rev, .slot = slot});
    ids.push_back(id.ok() ? *id : 0);
  }
  return ids;
}

// A TrafficPolicy's outlier detection goes to sm_outlier_cfg_v1 under the service's id; turning it
// off deletes the config and the kernel's ejections, so every backend is back in rotation.
TEST_F(MapSyncTest, OutlierConfigFollowsThePolicyAndLeavesWithIt) {
  model::DesiredState st;
  model::ServiceEntry e = Svc("127.10.0.1", 80, {Be("127.0.0.1", 8080), Be("127.0.0.2", 8080)});
  e.outlier = {
      .consecutive_connect_failures = 3, .base_ejection_ms = 1500, .max_ejection_percent = 50};
  Put(st, e);
  MapSync sync = Recover();
  SyncReport r = sync.Apply(st);
  ASSERT_EQ(r.failed, 0) << r.Summary();
  const uint32_t svc_id = SvcValue("127.10.0.1", 80).svc_id;
  absl::StatusOr<sm_outlier_cfg> cfg = outlier_cfg_.Lookup(svc_id);
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->consecutive_failures, 3u);
  EXPECT_EQ(cfg->base_ejection_ns, 1500ull * 1000000);
  EXPECT_EQ(cfg->max_ejection_percent, 50u);

  // The kernel ejected a backend of this service, and one of a backend id that no longer exists.
  ASSERT_TRUE(
      outliers_.Update(sm_be_conn_key{svc_id, 1}, sm_be_outlier{.ejected_until_ns = 9}).ok());
  ASSERT_TRUE(outliers_.Update(sm_be_conn_key{svc_id, 77}, sm_be_outlier{}).ok());
  ASSERT_TRUE(ejections_.Update(svc_id, sm_svc_ejections{}).ok());
  r = sync.Apply(st);
  EXPECT_TRUE(outliers_.Lookup(sm_be_conn_key{svc_id, 1}).ok());
  EXPECT_FALSE(outliers_.Lookup(sm_be_conn_key{svc_id, 77}).ok());

  // A restarted agent recovers the config and writes nothing new.
  MapSync again = Recover();
  outlier_cfg_.ResetCounts();
  r = again.Apply(st);
  EXPECT_EQ(outlier_cfg_.updates, 0);

  e.outlier = {};
  Put(st, e);
  r = again.Apply(st);
  EXPECT_FALSE(outlier_cfg_.Lookup(svc_id).ok());
  EXPECT_FALSE(ejections_.Lookup(svc_id).ok());
  EXPECT_FALSE(outliers_.Lookup(sm_be_conn_key{svc_id, 1}).ok());
}

TEST_F(MapSyncTest, LeastConnectionsTableIsTheBackendList) {
  MapSync sync = Recover();
  model::DesiredState st;
  Put(st, Svc("127.10.0.1", 80, {Be("127.0.0.11", 8080, 1), Be("127.0.0.12", 8080, 5)},
              model::LbAlgorithm::kLeastConnections));
  sync.Apply(st);
  sm_svc v = SvcValue("127.10.0.1", 80);
  EXPECT_EQ(v.algo, SM_LB_LEAST_CONN);
  EXPECT_EQ(v.lut_size, 2u) << "one slot per backend, whatever the weights";
  EXPECT_EQ(v.backend_count, 2u);
  EXPECT_EQ(lut_.size(), 2u);
  std::vector<uint32_t> ids = Slots(lut_, v, 0, 2);
  EXPECT_EQ(std::set<uint32_t>(ids.begin(), ids.end()).size(), 2u);
}

TEST_F(MapSyncTest, ConnectionLimitAppendsTheBackendListAndSurvivesRecovery) {
  MapSync sync = Recover();
  model::DesiredState st;
  model::ServiceEntry e =
      Svc("127.10.0.1", 80, {Be("127.0.0.11", 8080, 1), Be("127.0.0.12", 8080, 3)},
          model::LbAlgorithm::kMaglev);
  e.max_connections_per_backend = 7;
  Put(st, e);
  sync.Apply(st);
  sm_svc v = SvcValue("127.10.0.1", 80);
  EXPECT_EQ(v.max_conns_per_backend, 7);
  EXPECT_EQ(v.lut_size, 251u);
  EXPECT_EQ(lut_.size(), 253u) << "the Maglev table, then one slot per backend";
  std::vector<uint32_t> list = Slots(lut_, v, 251, 2);
  EXPECT_EQ(std::set<uint32_t>(list.begin(), list.end()).size(), 2u);
  EXPECT_EQ(LutSlotsWritten(v), 253u);

  // A restarted agent sees the list as part of the revision, not as orphans.
  MapSync again = Recover();
  EXPECT_EQ(again.orphans_removed(), 0u);
  ResetCounts();
  SyncReport r = again.Apply(st);
  EXPECT_EQ(r.unchanged, 1) << r.Summary();
  EXPECT_EQ(Writes(), 0);

  // Changing only the limit rewrites the service entry alone.
  st.begin()->second.max_connections_per_backend = 9;
  ResetCounts();
  r = again.Apply(st);
  EXPECT_EQ(r.updated, 1);
  EXPECT_EQ(Writes(), 1);
  EXPECT_EQ(SvcValue("127.10.0.1", 80).max_conns_per_backend, 9);

  // Dropping the limit drops the list.
  st.begin()->second.max_connections_per_backend = 0;
  again.Apply(st);
  EXPECT_EQ(lut_.size(), 251u);
}

TEST_F(MapSyncTest, TooManyBackendsForTheListFailOnlyThatService) {
  MapSync sync = Recover();
  std::vector<model::Backend> many;
  for (int i = 0; i < SM_LB_MAX_LIST_BACKENDS + 1; ++i) {
    many.push_back(Be(absl::StrCat("127.1.", i / 250, ".", i % 250 + 1), 80));
  }
  model::DesiredState st;
  Put(st, Svc("127.10.0.1", 80, many, model::LbAlgorithm::kLeastConnections));
  Put(st, Svc("127.10.0.2", 80, {Be("127.0.0.11", 8080)}));
  SyncReport r = sync.Apply(st);
  EXPECT_EQ(r.failed, 1);
  EXPECT_EQ(r.added, 1);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_NE(r.errors[0].find("257 backends"), std::string::npos) << r.errors[0];
}

TEST_F(MapSyncTest, ZeroCountsOfGoneBackendsArePrunedLiveOnesKept) {
  MapSync sync = Recover();
  model::DesiredState st;
  Put(st, Svc("127.10.0.1", 80, {Be("127.0.0.11", 8080), Be("127.0.0.12", 8080)},
              model::LbAlgorithm::kLeastConnections));
  sync.Apply(st);
  sm_svc v = SvcValue("127.10.0.1", 80);
  std::vector<uint32_t> ids = Slots(lut_, v, 0, 2);
  // What the kernel would have: counts for both backends, and stale pairs of a gone service.
  ASSERT_TRUE(conns_.Update({.svc_id = v.svc_id, .backend_id = ids[0]}, 0).ok());
  ASSERT_TRUE(conns_.Update({.svc_id = v.svc_id, .backend_id = ids[1]}, 4).ok());
  ASSERT_TRUE(conns_.Update({.svc_id = 999, .backend_id = 1}, 0).ok());
  ASSERT_TRUE(conns_.Update({.svc_id = 999, .backend_id = 2}, 3).ok());
  sync.Apply(st);
  EXPECT_EQ(conns_.size(), 3u) << "only the zero count of the gone service goes";
  EXPECT_EQ(sync.conn_counts_pruned(), 1u);

  // The backend with open connections leaves: its count stays until they close.
  st.begin()->second.backends.pop_back();
  sync.Apply(st);
  auto left = conns_.Lookup({.svc_id = v.svc_id, .backend_id = ids[1]});
  EXPECT_TRUE(left.ok());
}

TEST_F(MapSyncTest, AddWritesBackendsAndTableThenService) {
  MapSync sync = Recover();
  model::DesiredState st;
  Put(st, Svc("127.10.0.1", 80, {Be("127.0.0.11", 8080), Be("127.0.0.12", 8080)}));
  SyncReport r = sync.Apply(st);
  EXPECT_EQ(r.added, 1);
  EXPECT_EQ(svc_.size(), 1u);
  EXPECT_EQ(be_.size(), 2u);
  EXPECT_EQ(lut_.size(), 2u);  // equal weights: the uniform table, one slot per backend
  sm_svc v = SvcValue("127.10.0.1", 80);
  EXPECT_EQ(v.rev, 1u);
  EXPECT_EQ(v.lut_size, 2u);
  EXPECT_EQ(v.backend_count, 2u);
  EXPECT_NE(v.svc_id, 0u);
}

TEST_F(MapSyncTest, SameStateTwiceWritesNothing) {
  MapSync sync = Recover();
  model::DesiredState st;
  Put(st, Svc("127.10.0.1", 80, {Be("127.0.0.11", 8080)}));
  Put(st, Svc("127.10.0.2", 80, {Be("127.0.0.11", 8080), Be("127.0.0.12", 8080)},
              model::LbAlgorithm::kMaglev));
  sync.Apply(st);
  ResetCounts();
  SyncReport r = sync.Apply(st);
  EXPECT_EQ(r.unchanged, 2);
  EXPECT_EQ(Writes(), 0);
  EXPECT_EQ(r.entries_written, 0u);
}

TEST_F(MapSyncTest, ChangingOneServiceLeavesTheOthersUntouched) {
  MapSync sync = Recover();
  model::DesiredState st;
  Put(st, Svc("127.10.0.1", 80, {Be("127.0.0.11", 8080)}));
  Put(st, Svc("127.10.0.2", 80, {Be("127.0.0.12", 8080)}));
  sync.Apply(st);
  sm_svc untouched_before = SvcValue("127.10.0.2", 80);
  ResetCounts();
  st.begin()->second.backends.push_back(Be("127.0.0.13", 8080));
  SyncReport r = sync.Apply(st);
  EXPECT_EQ(r.updated, 1);
  EXPECT_EQ(r.unchanged, 1);
  // New revision: 2 backends + 2 slots + the service switch.
  EXPECT_EQ(Writes(), 5);
  EXPECT_EQ(SvcValue("127.10.0.1", 80).rev, 2u);
  EXPECT_TRUE(bpf::AbiEqual(SvcValue("127.10.0.2", 80), untouched_before));
  // The old revision is gone: one service with 2 backends, one with 1.
  EXPECT_EQ(be_.size(), 3u);
  EXPECT_EQ(lut_.size(), 3u);
}

TEST_F(MapSyncTest, AffinityTimeoutChangeUpdatesOnlyTheServiceEntry) {
  MapSync sync = Recover();
  model::DesiredState st;
  model::ServiceEntry e = Svc("127.10.0.1", 80, {Be("127.0.0.11", 8080)});
  e.affinity = model::SessionAffinity::kClientIP;
  e.affinity_timeout_seconds = 60;
  Put(st, e);
  sync.Apply(st);
  ResetCounts();
  st.begin()->second.affinity_timeout_seconds = 120;
  SyncReport r = sync.Apply(st);
  EXPECT_EQ(r.updated, 1);
  EXPECT_EQ(Writes(), 1);
  EXPECT_EQ(SvcValue("127.10.0.1", 80).rev, 1u) << "same backend set, same revision";
  EXPECT_EQ(SvcValue("127.10.0.1", 80).affinity_timeout_s, 120u);
}

TEST_F(MapSyncTest, RemovalDeletesEveryEntry) {
  MapSync sync = Recover();
  model::DesiredState st;
  Put(st, Svc("127.10.0.1", 80, {Be("127.0.0.11", 8080)}, model::LbAlgorithm::kMaglev));
  sync.Apply(st);
  EXPECT_EQ(lut_.size(), 251u);
  SyncReport r = sync.Apply({});
  EXPECT_EQ(r.removed, 1);
  EXPECT_EQ(svc_.size() + be_.size() + lut_.size(), 0u);
}

TEST_F(MapSyncTest, EmptyBackendSetIsAServiceWithNoTable) {
  MapSync sync = Recover();
  model::DesiredState st;
  Put(st, Svc("127.10.0.1", 80, {}));
  sync.Apply(st);
  EXPECT_EQ(SvcValue("127.10.0.1", 80).lut_size, 0u);
  EXPECT_EQ(lut_.size(), 0u);
}

TEST_F(MapSyncTest, BackendIdsAreStableAcrossUpdatesAndSharedByAddress) {
  MapSync sync = Recover();
  model::DesiredState st;
  Put(st, Svc("127.10.0.1", 80, {Be("127.0.0.11", 8080)}));
  Put(st, Svc("127.10.0.2", 80, {Be("127.0.0.11", 8080)}));
  sync.Apply(st);
  auto ids_of = [&] {
    std::set<uint32_t> ids;
    auto dump = be_.Dump();  // keep the StatusOr alive while iterating its value
    for (const auto& [k, v] : *dump) ids.insert(k.backend_id);
    return ids;
  };
  std::set<uint32_t> ids = ids_of();
  EXPECT_EQ(ids.size(), 1u) << "one address:port, one id";
  st.begin()->second.backends.push_back(Be("127.0.0.12", 8080));
  sync.Apply(st);
  std::set<uint32_t> after = ids_of();
  EXPECT_TRUE(after.contains(*ids.begin())) << "affinity entries refer to backend ids";
  EXPECT_EQ(after.size(), 2u);
}

TEST_F(MapSyncTest, RestartRecoversStateAndWritesNothingForTheSameState) {
  model::DesiredState st;
  Put(st, Svc("127.10.0.1", 80, {Be("127.0.0.11", 8080, 1), Be("127.0.0.12", 8080, 3)}));
  Put(st, Svc("127.10.0.2", 53, {Be("127.0.0.13", 53)}, model::LbAlgorithm::kMaglev));
  {
    MapSync first = Recover();
    first.Apply(st);
  }
  ResetCounts();
  MapSync second = Recover();
  EXPECT_EQ(second.service_count(), 2u);
  SyncReport r = second.Apply(st);
  EXPECT_EQ(r.unchanged, 2);
  EXPECT_EQ(Writes(), 0);
}

TEST_F(MapSyncTest, RecoveryRemovesEntriesOfHalfWrittenRevisions) {
  {
    MapSync first = Recover();
    model::DesiredState st;
    Put(st, Svc("127.10.0.1", 80, {Be("127.0.0.11", 8080)}));
    first.Apply(st);
  }
  // An agent died after writing revision 7 but before switching the service to it, and an older
  // agent left entries of a service that no longer exists.
  sm_svc v = SvcValue("127.10.0.1", 80);
  ASSERT_TRUE(be_.Update({.svc_id = v.svc_id, .rev = 7, .backend_id = 99}, sm_backend{}).ok());
  ASSERT_TRUE(lut_.Update({.svc_id = v.svc_id, .rev = 7, .slot = 0}, 99).ok());
  ASSERT_TRUE(lut_.Update({.svc_id = 4242, .rev = 1, .slot = 0}, 1).ok());
  MapSync second = Recover();
  EXPECT_EQ(second.orphans_removed(), 3u);
  EXPECT_EQ(be_.size(), 1u);
  EXPECT_EQ(lut_.size(), 1u);
}

TEST_F(MapSyncTest, FullMapRollsBackAndKeepsThePreviousSet) {
  FakeMap<sm_lut_key, uint32_t> small_lut("sm_lut_v1", 10);
  auto sync = MapSync::Recover({.services = &svc_, .backends = &be_, .lut = &small_lut}, 251);
  ASSERT_TRUE(sync.ok());
  model::DesiredState st;
  Put(st, Svc("127.10.0.1", 80, {Be("127.0.0.11", 8080)}));
  ASSERT_EQ(sync->Apply(st).failed, 0);
  st.begin()->second.algorithm = model::LbAlgorithm::kMaglev;  // needs 251 slots
  SyncReport r = sync->Apply(st);
  ASSERT_EQ(r.failed, 1);
  EXPECT_NE(r.errors[0].find("127.10.0.1:80/TCP"), std::string::npos) << r.errors[0];
  EXPECT_NE(r.errors[0].find("sm_lut_v1"), std::string::npos) << r.errors[0];
  EXPECT_EQ(small_lut.size(), 1u) << "partial revision removed";
  EXPECT_EQ(SvcValue("127.10.0.1", 80).rev, 1u);
  EXPECT_EQ(SvcValue("127.10.0.1", 80).algo, SM_LB_RANDOM);
  // The failed update is retried on the next Apply, and succeeds once there is room.
  SyncReport again = sync->Apply(st);
  EXPECT_EQ(again.failed, 1);
}

TEST_F(MapSyncTest, BackendOfTheWrongFamilyFailsOnlyThatService) {
  MapSync sync = Recover();
  model::DesiredState st;
  Put(st, Svc("127.10.0.1", 80, {Be("::1", 8080)}));
  Put(st, Svc("127.10.0.2", 80, {Be("127.0.0.1", 8080)}));
  SyncReport r = sync.Apply(st);
  EXPECT_EQ(r.failed, 1);
  EXPECT_EQ(r.added, 1);
  EXPECT_NE(r.errors[0].find("address family"), std::string::npos) << r.errors[0];
}

}  // namespace
}  // namespace sockmesh::agent
