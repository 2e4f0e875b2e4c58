// SPDX-License-Identifier: Apache-2.0
// PolicySync against in-memory maps: rows under fresh kernel set ids, endpoints by address and by
// local cgroup, replacement without a gap, and refusals that leave the policy in force untouched.
#include "userspace/agent/policy_sync.h"

#include <gtest/gtest.h>

#include <set>

#include "absl/strings/match.h"
#include "sockmesh/consts.h"
#include "tests/support/fake_map.h"
#include "tests/support/policy_builder.h"
#include "userspace/agent/abi_conversion.h"

namespace sockmesh::agent {
namespace {

using testing::CompiledPolicyBuilder;
using testing::FakeMap;
using testing::kAnyPort;
using testing::kAnySource;

class PolicySyncTest : public ::testing::Test {
 protected:
  PolicySync Recovered() {
    absl::StatusOr<PolicySync> sync =
        PolicySync::Recover(PolicyMaps{.rows = &rows_, .ips = &ips_, .cgroups = &cgroups_});
    EXPECT_TRUE(sync.ok()) << sync.status();
    return *std::move(sync);
  }
  sm_policy_endpoint IpEndpoint(const std::string& ip) {
    absl::StatusOr<sm_policy_endpoint> ep =
        ips_.Lookup(ToIpIdentityKey(*model::IpAddress::Parse(ip)));
    EXPECT_TRUE(ep.ok()) << ip << ": " << ep.status();
    return ep.ok() ? *ep : sm_policy_endpoint{};
  }
  std::set<uint32_t> KernelSetIds() {
    std::set<uint32_t> ids;
    auto dump = rows_.Dump();
    for (const auto& [key, value] : *dump) ids.insert(key.policy_set_id);
    return ids;
  }

  FakeMap<sm_policy_row_key, sm_policy_row> rows_{"sm_policy_rows_v1", 16};
  FakeMap<sm_ip_identity_key, sm_policy_endpoint> ips_{"sm_ip_policy_endpoint_v1", 8};
  FakeMap<uint64_t, sm_policy_endpoint> cgroups_{"sm_cgroup_policy_endpoint_v1", 8};
};

// payment allows order (identity 300) on port 7001; ledger has a DENY for everyone.
v1::CompiledPolicy TwoSets() {
  return CompiledPolicyBuilder()
      .Policy(1, "shop", "allow-order", v1::POLICY_ACTION_ALLOW)
      .Policy(2, "shop", "deny-all", v1::POLICY_ACTION_DENY)
      .Set(1, /*has_allow=*/true)
      .Row(300, 7001, {.allow = 1})
      .Set(2, /*has_allow=*/false)
      .Row(kAnySource, kAnyPort, {.deny = 2})
      .Endpoint(1, "shop", "payment", {"10.0.0.1", "fd00::1"}, 1)
      .Endpoint(2, "shop", "ledger", {"10.0.0.2"}, 2)
      .Build();
}

TEST_F(PolicySyncTest, WritesRowsAndEndpointsByAddressAndLocalCgroup) {
  PolicySync sync = Recovered();
  std::vector<WorkloadCgroup> local = {{.workload = {"shop", "payment"}, .cgroup_id = 77}};
  absl::StatusOr<PolicySyncReport> report = sync.Apply(TwoSets(), local);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->rows_written, 2u);
  EXPECT_EQ(rows_.size(), 2u);
  EXPECT_EQ(ips_.size(), 3u);

  sm_policy_endpoint payment = IpEndpoint("10.0.0.1");
  EXPECT_EQ(payment.endpoint_id, 1u);
  EXPECT_EQ(payment.flags, static_cast<uint32_t>(SM_POLICY_F_HAS_ALLOW));
  EXPECT_TRUE(bpf::AbiEqual(IpEndpoint("fd00::1"), payment));
  sm_policy_endpoint ledger = IpEndpoint("10.0.0.2");
  EXPECT_EQ(ledger.flags, 0u);
  EXPECT_NE(ledger.policy_set_id, payment.policy_set_id);

  absl::StatusOr<sm_policy_endpoint> by_cgroup = cgroups_.Lookup(77);
  ASSERT_TRUE(by_cgroup.ok());
  EXPECT_TRUE(bpf::AbiEqual(*by_cgroup, payment));

  // The allow row is found under payment's kernel set id, port in network order.
  sm_policy_row_key key = ToPolicyRowKey(payment.policy_set_id, 300, 7001, {}, 0);
  EXPECT_EQ(key.prefixlen, static_cast<uint32_t>(SM_POLICY_ROW_FIXED_BITS));
  absl::StatusOr<sm_policy_row> row = rows_.Lookup(key);
  ASSERT_TRUE(row.ok());
  EXPECT_EQ(row->allow_policy_id, 1u);
  EXPECT_EQ(row->deny_policy_id, 0u);
}

TEST_F(PolicySyncTest, ReplacementUsesFreshSetIdsAndDeletesTheOldRows) {
  PolicySync sync = Recovered();
  ASSERT_TRUE(sync.Apply(TwoSets(), {}).ok());
  std::set<uint32_t> before = KernelSetIds();
  ASSERT_EQ(before.size(), 2u);

  absl::StatusOr<PolicySyncReport> report = sync.Apply(TwoSets(), {});
  ASSERT_TRUE(report.ok()) << report.status();
  std::set<uint32_t> after = KernelSetIds();
  ASSERT_EQ(after.size(), 2u);
  for (uint32_t id : after) EXPECT_FALSE(before.contains(id)) << id;
  EXPECT_EQ(report->rows_deleted, 2u);
  EXPECT_TRUE(after.contains(IpEndpoint("10.0.0.1").policy_set_id));

  // An empty policy: nothing is selected any more, every entry leaves.
  ASSERT_TRUE(sync.Apply(v1::CompiledPolicy(), {}).ok());
  EXPECT_EQ(rows_.size(), 0u);
  EXPECT_EQ(ips_.size(), 0u);
}

TEST_F(PolicySyncTest, SourcePrefixRowsMakeTheEndpointAddressDependent) {
  PolicySync sync = Recovered();
  v1::CompiledPolicy policy = CompiledPolicyBuilder()
                                  .Policy(1, "shop", "from-lan", v1::POLICY_ACTION_ALLOW)
                                  .Set(1, true)
                                  .Row(kAnySource, kAnyPort, {.allow = 1}, "192.168.7.0", 24)
                                  .Endpoint(1, "shop", "payment", {"10.0.0.1"}, 1)
                                  .Build();
  ASSERT_TRUE(sync.Apply(policy, {}).ok());
  EXPECT_EQ(IpEndpoint("10.0.0.1").flags,
            static_cast<uint32_t>(SM_POLICY_F_HAS_ALLOW | SM_POLICY_F_SOURCE_ADDRESS_DEPENDENT));
  auto dump = rows_.Dump();
  ASSERT_EQ(dump->size(), 1u);
  const sm_policy_row_key& key = dump->front().first;
  EXPECT_EQ(key.prefixlen, static_cast<uint32_t>(SM_POLICY_ROW_FIXED_BITS + 96 + 24));
  const uint8_t* addr = reinterpret_cast<const uint8_t*>(key.source_addr);
  EXPECT_EQ(addr[10], 0xff);
  EXPECT_EQ(addr[12], 192);
  EXPECT_EQ(addr[14], 7);
}

TEST_F(PolicySyncTest, InvalidPolicyIsRefusedNamingTheFieldAndTheOldOneStays) {
  PolicySync sync = Recovered();
  ASSERT_TRUE(sync.Apply(TwoSets(), {}).ok());
  const size_t rows = rows_.size();
  const sm_policy_endpoint payment = IpEndpoint("10.0.0.1");

  v1::CompiledPolicy bad = TwoSets();
  bad.mutable_endpoints(1)->set_policy_set_id(9);
  absl::StatusOr<PolicySyncReport> r = sync.Apply(bad, {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "policy.endpoints[1].policy_set_id: 9 is not in policy.sets");

  bad = TwoSets();
  bad.mutable_sets(0)->mutable_rows(0)->set_allow_policy_id(5);
  r = sync.Apply(bad, {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            "policy.sets[0].rows[0].allow_policy_id: 5 is not in policy.policies");

  bad = TwoSets();
  *bad.mutable_sets(1)->add_rows() = bad.sets(1).rows(0);
  r = sync.Apply(bad, {});
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(absl::StartsWith(r.status().message(), "policy.sets[1].rows[1]: "))
      << r.status().message();

  bad = TwoSets();
  bad.mutable_sets(0)->mutable_rows(0)->set_port(70000);
  r = sync.Apply(bad, {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "policy.sets[0].rows[0].port: 70000 is not a port");

  EXPECT_EQ(rows_.size(), rows);
  EXPECT_TRUE(bpf::AbiEqual(IpEndpoint("10.0.0.1"), payment));
}

TEST_F(PolicySyncTest, PolicyThatDoesNotFitIsRefusedAndTheOldOneStays) {
  PolicySync sync = Recovered();
  ASSERT_TRUE(sync.Apply(TwoSets(), {}).ok());
  const sm_policy_endpoint payment = IpEndpoint("10.0.0.1");

  CompiledPolicyBuilder big;
  big.Policy(1, "shop", "allow-many", v1::POLICY_ACTION_ALLOW).Set(1, true);
  for (uint32_t id = 300; id < 320; ++id) big.Row(id, 7001, {.allow = 1});
  big.Endpoint(1, "shop", "payment", {"10.0.0.1"}, 1);
  absl::StatusOr<PolicySyncReport> r = sync.Apply(big.Build(), {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(absl::StrContains(r.status().message(), "policy.sets: 20 rows do not fit"))
      << r.status().message();
  EXPECT_EQ(rows_.size(), 2u);
  EXPECT_TRUE(bpf::AbiEqual(IpEndpoint("10.0.0.1"), payment));

  // Too many addresses: the rows written for it are taken back, the old endpoints stay.
  CompiledPolicyBuilder wide;
  wide.Policy(1, "shop", "allow-order", v1::POLICY_ACTION_ALLOW)
      .Set(1, true)
      .Row(300, 7001, {.allow = 1});
  std::vector<std::string> ips;
  for (int i = 1; i <= 9; ++i) ips.push_back("10.1.0." + std::to_string(i));
  wide.Endpoint(1, "shop", "payment", ips, 1);
  r = sync.Apply(wide.Build(), {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(absl::StrContains(r.status().message(), "sm_ip_policy_endpoint_v1"))
      << r.status().message();
  EXPECT_EQ(rows_.size(), 2u);
  EXPECT_EQ(ips_.size(), 3u);
  EXPECT_TRUE(bpf::AbiEqual(IpEndpoint("10.0.0.1"), payment));
}

TEST_F(PolicySyncTest, RecoveredEntriesAreReplacedByTheFirstPolicyNotByACgroupScan) {
  {
    PolicySync first = Recovered();
    ASSERT_TRUE(first.Apply(TwoSets(), {{.workload = {"shop", "payment"}, .cgroup_id = 77}}).ok());
  }
  PolicySync second = Recovered();
  EXPECT_EQ(second.row_count(), 2u);
  // No policy known yet: a cgroup scan must not wipe what the previous agent enforced.
  ASSERT_TRUE(second.UpdateCgroups({}).ok());
  EXPECT_EQ(cgroups_.size(), 1u);
  ASSERT_TRUE(second.Apply(TwoSets(), {}).ok());
  EXPECT_EQ(rows_.size(), 2u);
  EXPECT_EQ(cgroups_.size(), 0u);
  ASSERT_TRUE(second.UpdateCgroups({{.workload = {"shop", "ledger"}, .cgroup_id = 78}}).ok());
  absl::StatusOr<sm_policy_endpoint> ledger = cgroups_.Lookup(78);
  ASSERT_TRUE(ledger.ok());
  EXPECT_EQ(ledger->endpoint_id, 2u);
}

// The egress check records who opens a flow only while a local workload is selected by a policy:
// not after a start without one, nor for endpoints known only by address; from the moment a local
// workload's endpoint is written; after a restart that finds one; and not once the last one left.
TEST_F(PolicySyncTest, FlowGateRecordsOnlyWhileALocalWorkloadIsSelected) {
  FakeMap<uint32_t, uint32_t> gate{"sm_flow_gate_v1", 1};
  const PolicyMaps maps{.rows = &rows_, .ips = &ips_, .cgroups = &cgroups_, .flow_gate = &gate};
  auto gate_value = [&gate]() -> uint32_t {
    absl::StatusOr<uint32_t> v = gate.Lookup(0);
    return v.ok() ? *v : 99;
  };
  {
    absl::StatusOr<PolicySync> sync = PolicySync::Recover(maps);
    ASSERT_TRUE(sync.ok()) << sync.status();
    EXPECT_EQ(gate_value(), static_cast<uint32_t>(SM_FLOW_GATE_SKIP));
    ASSERT_TRUE(sync->Apply(TwoSets(), {}).ok());
    EXPECT_EQ(ips_.size(), 3u);
    EXPECT_EQ(gate_value(), static_cast<uint32_t>(SM_FLOW_GATE_SKIP)) << "addresses only";
    ASSERT_TRUE(sync->UpdateCgroups({{.workload = {"shop", "payment"}, .cgroup_id = 77}}).ok());
    EXPECT_EQ(gate_value(), static_cast<uint32_t>(SM_FLOW_GATE_RECORD));
  }
  ASSERT_TRUE(gate.Update(0, SM_FLOW_GATE_SKIP).ok());  // as a map created by this build reads
  absl::StatusOr<PolicySync> restarted = PolicySync::Recover(maps);
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  EXPECT_EQ(gate_value(), static_cast<uint32_t>(SM_FLOW_GATE_RECORD));
  ASSERT_TRUE(restarted->Apply(TwoSets(), {}).ok());  // payment's workload left the node
  EXPECT_EQ(cgroups_.size(), 0u);
  EXPECT_EQ(gate_value(), static_cast<uint32_t>(SM_FLOW_GATE_SKIP));
}

}  // namespace
}  // namespace sockmesh::agent
