// SPDX-License-Identifier: Apache-2.0
// The identity maps' plan (which address and cgroup gets which identity, local or not), their
// reconciliation against an in-memory map (only differences written; recovery from what a previous
// agent left), the workloads file, and `sockmeshctl identities` formatting.
#include "userspace/agent/identity_sync.h"

#include <filesystem>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/fake_map.h"
#include "tests/support/temp_dir.h"
#include "userspace/agent/abi_conversion.h"
#include "userspace/agent/workload_status_file.h"
#include "userspace/ctl/identity_dump.h"

namespace sockmesh::agent {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

model::IpAddress Ip(std::string_view text) { return model::IpAddress::Parse(text).value(); }

model::WorkloadState Workloads() {
  model::WorkloadState s;
  auto add = [&s](std::string ns, std::string name, std::string sa, uint32_t id,
                  std::vector<model::IpAddress> ips, std::string node) {
    model::Workload w{.kind = model::WorkloadKind::kPod,
                      .namespace_name = ns,
                      .name = name,
                      .service_account = sa,
                      .ips = std::move(ips),
                      .node_name = node,
                      .identity = id};
    s.identities[w.principal()] = id;
    s.workloads[w.key()] = w;
  };
  add("shop", "web-1", "web", 1000, {Ip("10.1.0.5"), Ip("fd00::5")}, "node-a");
  add("shop", "web-2", "web", 1000, {Ip("10.1.0.6")}, "node-b");
  add("demo", "client", "client", 2000, {}, "");
  return s;
}

sm_identity Id(uint32_t identity, bool local) { return ToAbiIdentity(identity, local); }

TEST(PlanIdentitiesTest, AddressesEverywhereCgroupsOnlyForLocalWorkloads) {
  std::vector<WorkloadCgroup> cgroups = {
      {{"demo", "client"}, "/cg/mesh/demo/client", 77},
      {{"demo", "stranger"}, "/cg/mesh/demo/stranger", 78},  // not in the model
  };
  IdentityPlan plan = PlanIdentities(Workloads(), "node-a", cgroups);
  ASSERT_THAT(plan.ips, SizeIs(3));
  EXPECT_TRUE(bpf::AbiEqual(plan.ips.at(Ip("10.1.0.5")), Id(1000, true)));
  EXPECT_TRUE(bpf::AbiEqual(plan.ips.at(Ip("fd00::5")), Id(1000, true)));
  EXPECT_TRUE(bpf::AbiEqual(plan.ips.at(Ip("10.1.0.6")), Id(1000, false)));  // node-b's
  ASSERT_THAT(plan.cgroups, SizeIs(1));
  EXPECT_TRUE(bpf::AbiEqual(plan.cgroups.at(77), Id(2000, true)));
  EXPECT_THAT(plan.conflicts, IsEmpty());
}

TEST(PlanIdentitiesTest, AnAddressClaimedTwiceGoesToTheFirstWorkload) {
  model::WorkloadState s = Workloads();
  s.workloads.at({"demo", "client"}).ips = {Ip("10.1.0.6")};
  IdentityPlan plan = PlanIdentities(s, "", {});
  EXPECT_EQ(plan.ips.at(Ip("10.1.0.6")).identity, 2000u);  // demo/client sorts first
  ASSERT_THAT(plan.conflicts, SizeIs(1));
  EXPECT_THAT(plan.conflicts[0], HasSubstr("10.1.0.6 is claimed by demo/client and shop/web-2"));
}

struct Maps {
  testing::FakeMap<sm_ip_identity_key, sm_identity> ips{"sm_ip_identity_v1"};
  testing::FakeMap<uint64_t, sm_identity> cgroups{"sm_cgroup_identity_v1"};
  IdentityMaps view() { return {.ips = &ips, .cgroups = &cgroups}; }
};

TEST(IdentitySyncTest, WritesOnlyDifferences) {
  Maps maps;
  absl::StatusOr<IdentitySync> sync = IdentitySync::Recover(maps.view());
  ASSERT_TRUE(sync.ok());
  IdentityPlan plan = PlanIdentities(Workloads(), "node-a", {{{"demo", "client"}, "", 77}});
  IdentitySyncReport first = sync->Apply(plan);
  EXPECT_EQ(first.written, 4u);
  EXPECT_THAT(first.errors, IsEmpty());
  EXPECT_EQ(maps.ips.size(), 3u);
  EXPECT_EQ(maps.cgroups.size(), 1u);

  maps.ips.ResetCounts();
  maps.cgroups.ResetCounts();
  IdentitySyncReport again = sync->Apply(plan);
  EXPECT_EQ(again.written + again.deleted, 0u);
  EXPECT_EQ(maps.ips.updates + maps.cgroups.updates, 0);

  // web-2 leaves, the client's cgroup goes away.
  model::WorkloadState fewer = Workloads();
  fewer.workloads.erase({"shop", "web-2"});
  IdentitySyncReport after = sync->Apply(PlanIdentities(fewer, "node-a", {}));
  EXPECT_EQ(after.deleted, 2u);
  EXPECT_EQ(after.written, 0u);
  EXPECT_EQ(maps.ips.size(), 2u);
  EXPECT_EQ(maps.cgroups.size(), 0u);
}

TEST(IdentitySyncTest, RecoversWhatAPreviousAgentWroteAndRemovesStaleEntries) {
  Maps maps;
  ASSERT_TRUE(maps.ips.Update(ToIpIdentityKey(Ip("10.1.0.5")), Id(1000, true)).ok());
  ASSERT_TRUE(maps.ips.Update(ToIpIdentityKey(Ip("10.9.9.9")), Id(3000, false)).ok());
  ASSERT_TRUE(maps.cgroups.Update(55, Id(3000, true)).ok());
  maps.ips.ResetCounts();
  absl::StatusOr<IdentitySync> sync = IdentitySync::Recover(maps.view());
  ASSERT_TRUE(sync.ok());
  IdentitySyncReport report = sync->Apply(PlanIdentities(Workloads(), "node-a", {}));
  EXPECT_EQ(report.deleted, 2u);  // 10.9.9.9 and cgroup 55
  EXPECT_EQ(report.written, 2u);  // fd00::5 and 10.1.0.6; 10.1.0.5 was already right
  EXPECT_EQ(maps.ips.updates, 2);
}

TEST(IdentitySyncTest, AFullMapIsReportedAndRetriedNextTime) {
  Maps maps;
  testing::FakeMap<sm_ip_identity_key, sm_identity> small("sm_ip_identity_v1", 2);
  IdentityMaps view{.ips = &small, .cgroups = &maps.cgroups};
  absl::StatusOr<IdentitySync> sync = IdentitySync::Recover(view);
  ASSERT_TRUE(sync.ok());
  IdentitySyncReport report = sync->Apply(PlanIdentities(Workloads(), "", {}));
  ASSERT_THAT(report.errors, SizeIs(1));
  EXPECT_THAT(report.errors[0], HasSubstr("sm_ip_identity_v1 update"));
  EXPECT_EQ(report.written, 2u);
}

TEST(WorkloadStatusFileTest, RoundTripAndMissingFile) {
  testing::TempDir dir("identity-sync-test");
  const std::string path = WorkloadStatusPath(dir.path(), "inst");
  EXPECT_TRUE(absl::IsNotFound(ReadWorkloadStatus(path).status()));
  ASSERT_TRUE(WriteWorkloadStatus(path, Workloads()).ok());
  absl::StatusOr<model::WorkloadState> back = ReadWorkloadStatus(path);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, Workloads());
  ASSERT_TRUE(RemoveWorkloadStatus(dir.path(), "inst").ok());
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(IdentityDumpTest, TableAndJsonNameTheKernelEntries) {
  std::vector<std::pair<sm_ip_identity_key, sm_identity>> ips = {
      {ToIpIdentityKey(Ip("10.1.0.6")), Id(1000, false)},
      {ToIpIdentityKey(Ip("10.1.0.5")), Id(1000, true)},
      {ToIpIdentityKey(Ip("10.7.0.1")), Id(4242, false)}};
  std::vector<std::pair<uint64_t, sm_identity>> cgroups = {{77, Id(2000, true)}};
  ctl::IdentityDump dump =
      ctl::BuildIdentityDump("default", ips, cgroups, Workloads(), {{77, "demo/client"}});
  ASSERT_THAT(dump.entries, SizeIs(4));
  EXPECT_EQ(dump.entries[0].key, "10.1.0.5");
  EXPECT_EQ(dump.entries[0].principal, "cluster.local/ns/shop/sa/web");
  EXPECT_EQ(dump.entries[0].workloads, std::vector<std::string>{"shop/web-1"});
  EXPECT_EQ(dump.entries[2].principal, "");  // a number the file does not know
  EXPECT_EQ(dump.entries[3].map, "cgroup");
  EXPECT_EQ(dump.entries[3].workloads, std::vector<std::string>{"demo/client"});

  const std::string table = ctl::FormatIdentitiesTable(dump);
  EXPECT_THAT(table, HasSubstr("IDENTITY"));
  EXPECT_THAT(table, HasSubstr("1000      cluster.local/ns/shop/sa/web     ip      10.1.0.5  yes"));
  EXPECT_THAT(table, HasSubstr("2000      cluster.local/ns/demo/sa/client  cgroup  77"));
  const std::string json = ctl::FormatIdentitiesJson(dump);
  EXPECT_THAT(json, HasSubstr("\"principal\": \"cluster.local/ns/demo/sa/client\""));
  EXPECT_THAT(json, HasSubstr("\"map\": \"cgroup\""));

  ctl::IdentityDump unnamed =
      ctl::BuildIdentityDump("default", ips, {}, absl::NotFoundError("no file"), {});
  EXPECT_THAT(ctl::FormatIdentitiesTable(unnamed), HasSubstr("principals unknown (no file)"));
}

}  // namespace
}  // namespace sockmesh::agent
