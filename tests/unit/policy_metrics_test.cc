// SPDX-License-Identifier: Apache-2.0
// sockmesh_policy_decisions_total: kernel decision keys named from the applied policy and
// workloads, and the exposition they produce.
#include <gtest/gtest.h>
#include <prometheus/text_serializer.h>

#include "absl/strings/match.h"
#include "tests/support/policy_builder.h"
#include "userspace/agent/policy_metrics_source.h"

namespace sockmesh::agent {
namespace {

sm_policy_decision_key Key(uint32_t source, uint32_t policy, uint8_t verdict, uint8_t point) {
  sm_policy_decision_key k{};
  k.endpoint_id = 1;
  k.source_identity = source;
  k.policy_id = policy;
  k.verdict = verdict;
  k.point = point;
  return k;
}

TEST(PolicyMetricsTest, NamesEndpointsPoliciesAndSources) {
  v1::CompiledPolicy policy = testing::CompiledPolicyBuilder()
                                  .Policy(2, "shop", "deny-order", v1::POLICY_ACTION_DENY)
                                  .Set(1, false)
                                  .Row(300, testing::kAnyPort, {.deny = 2})
                                  .Endpoint(1, "shop", "payment", {"10.0.0.1"}, 1)
                                  .Build();
  model::WorkloadState workloads;
  workloads.identities = {{"cluster.local/ns/shop/sa/order", 300},
                          {"cluster.local/ns/shop/sa/web", 301}};
  model::Workload order;
  order.identity = 300;
  workloads.workloads[{"shop", "order-1"}] = order;
  model::Workload web;
  web.identity = 301;
  workloads.workloads[{"shop", "web-1"}] = web;
  workloads.workloads[{"shop", "web-2"}] = web;
  PolicyNames names = NamePolicy(policy, workloads);

  std::vector<bpf::PolicyDecisionCount> kernel = {
      {Key(300, 2, SM_POLICY_DENY, SM_POLICY_AT_CLIENT), 3},
      {Key(301, 0, SM_POLICY_ALLOW, SM_POLICY_AT_DESTINATION), 5},
      {Key(0, 0, SM_POLICY_DENY_NO_MATCH, SM_POLICY_AT_DESTINATION), 7}};
  std::vector<metrics::LabelledPolicyDecision> labelled = LabelPolicyDecisions(kernel, names);
  ASSERT_EQ(labelled.size(), 3u);
  EXPECT_EQ(labelled[0].labels,
            (metrics::PolicyDecisionLabels{.action = "deny",
                                           .source_workload = "shop/order-1",
                                           .destination_workload = "shop/payment",
                                           .policy = "shop/deny-order",
                                           .reporter = "source"}));
  EXPECT_EQ(labelled[1].labels.source_workload, "cluster.local/ns/shop/sa/web");
  EXPECT_EQ(labelled[1].labels.policy, "no_allow_policy");
  EXPECT_EQ(labelled[2].labels.source_workload, "unknown");
  EXPECT_EQ(labelled[2].labels.policy, "no_allow_match");
  EXPECT_EQ(labelled[2].labels.reporter, "destination");

  std::string text =
      prometheus::TextSerializer().Serialize({metrics::PolicyDecisionFamily(labelled)});
  EXPECT_TRUE(absl::StrContains(
      text,
      "sockmesh_policy_decisions_total{action=\"deny\",source_workload=\"shop/order-1\","
      "destination_workload=\"shop/payment\",policy=\"shop/deny-order\",reporter=\"source\"} 3"))
      << text;
}

// The control plane renumbers policies on every change (and reuses endpoint numbers): counts of
// a number that now names another policy or workload, or nothing, must leave the kernel map
// instead of being reported under the new name. Unknown old numbers and policy 0 stay.
TEST(PolicyMetricsTest, StaleKeysAreThoseWhoseNumbersChangedMeaning) {
  PolicyNames before;
  before.endpoints = {{1, "shop/payment"}, {2, "shop/ledger"}};
  before.policies = {{1, "shop/deny-client"}, {2, "shop/audit"}};
  PolicyNames after;
  after.endpoints = {{1, "shop/payment"}};                         // ledger gone
  after.policies = {{1, "shop/allow-client"}, {2, "shop/audit"}};  // 1 renumbered
  auto key = [](uint32_t endpoint, uint32_t policy, uint8_t verdict) {
    sm_policy_decision_key k = Key(300, policy, verdict, SM_POLICY_AT_CLIENT);
    k.endpoint_id = endpoint;
    return k;
  };
  std::vector<bpf::PolicyDecisionCount> kernel = {
      {key(1, 1, SM_POLICY_DENY), 3},           // policy 1 now names another policy
      {key(1, 2, SM_POLICY_AUDIT), 4},          // unchanged
      {key(1, 0, SM_POLICY_DENY_NO_MATCH), 5},  // no policy: kept
      {key(2, 0, SM_POLICY_ALLOW), 6},          // endpoint 2 gone
      {key(9, 7, SM_POLICY_DENY), 7}};          // numbers the old names did not know: kept
  std::vector<sm_policy_decision_key> stale = StaleDecisionKeys(kernel, before, after);
  ASSERT_EQ(stale.size(), 2u);
  EXPECT_EQ(stale[0].policy_id, 1u);
  EXPECT_EQ(stale[0].endpoint_id, 1u);
  EXPECT_EQ(stale[1].endpoint_id, 2u);
  EXPECT_TRUE(StaleDecisionKeys(kernel, after, after).empty());
}

}  // namespace
}  // namespace sockmesh::agent
