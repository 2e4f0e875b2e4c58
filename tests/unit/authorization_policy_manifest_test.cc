// SPDX-License-Identifier: Apache-2.0
// AuthorizationPolicy from YAML to the state: what the parser reads, the refusal of each
// unsupported or malformed field (the policy whole, with field path and value, while the file's
// other objects still apply), the status conditions, and the compiled policy in a Snapshot and a
// Delta (present only when it changed) through the wire and back, undo included.
#include <string>

#include "control_plane/model/delta_apply.h"
#include "control_plane/model/policy_conversion.h"
#include "control_plane/model/policy_evaluator.h"
#include "control_plane/model/proto_conversion.h"
#include "control_plane/sources/authorization_policy_builder.h"
#include "control_plane/sources/manifest_parser.h"
#include "control_plane/sources/workload_builder.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sockmesh::sources {
namespace {

using ::testing::HasSubstr;
using ::testing::SizeIs;

constexpr char kWorkloads[] = R"(
apiVersion: v1
kind: Pod
metadata: {name: payment-1, namespace: shop, labels: {app: payment}}
spec: {serviceAccountName: payment}
status: {podIP: 127.0.40.1}
---
apiVersion: v1
kind: Pod
metadata: {name: order-1, namespace: shop, labels: {app: order}}
spec: {serviceAccountName: order}
status: {podIP: 127.0.40.2}
)";

AuthorizationPolicyManifest ParseOne(const std::string& yaml) {
  absl::StatusOr<ParsedManifests> parsed = ParseManifests(yaml, "policy.yaml");
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  if (!parsed.ok() || parsed->authorization_policies.size() != 1) {
    ADD_FAILURE() << "expected one policy";
    return {};
  }
  return parsed->authorization_policies[0];
}

std::string Policy(const std::string& spec) {
  return "apiVersion: sockmesh.io/v1alpha1\nkind: AuthorizationPolicy\n"
         "metadata: {name: p, namespace: shop, generation: 3}\nspec:\n" +
         spec;
}

TEST(AuthorizationPolicyParse, ReadsEveryL4Field) {
  const AuthorizationPolicyManifest m = ParseOne(Policy(R"(
  selector: {matchLabels: {app: payment}}
  action: DENY
  rules:
  - from:
    - source:
        principals: ["cluster.local/ns/shop/sa/order"]
        notPrincipals: ["*/sa/admin"]
        namespaces: ["shop"]
        notNamespaces: ["kube-*"]
        ipBlocks: ["10.0.0.1/8", "127.0.30.7", "fd00::/16"]
        notIpBlocks: ["10.255.0.0/16"]
    to:
    - operation: {ports: ["7001", 8080]}
  - {}
)"));
  ASSERT_TRUE(m.policy.has_value()) << m.reject_message;
  EXPECT_EQ(m.generation, 3);
  EXPECT_EQ(m.action, model::PolicyAction::kDeny);
  const model::AuthorizationPolicy& p = *m.policy;
  EXPECT_EQ(p.selector, (model::Labels{{"app", "payment"}}));
  ASSERT_THAT(p.rules, SizeIs(2));
  const model::PolicySource& s = p.rules[0].from.at(0);
  EXPECT_EQ(s.principals, std::vector<std::string>{"cluster.local/ns/shop/sa/order"});
  EXPECT_EQ(s.not_namespaces, std::vector<std::string>{"kube-*"});
  ASSERT_THAT(s.ip_blocks, SizeIs(3));
  EXPECT_EQ(s.ip_blocks[0].ToString(), "10.0.0.0/8");  // host bits cleared
  EXPECT_EQ(s.ip_blocks[1].ToString(), "127.0.30.7/32");
  EXPECT_EQ(s.ip_blocks[2].ToString(), "fd00::/16");
  EXPECT_EQ(p.rules[0].to.at(0).ports, (std::vector<uint16_t>{7001, 8080}));
  EXPECT_TRUE(p.rules[1].from.empty());
}

TEST(AuthorizationPolicyParse, EmptySpecAndDefaults) {
  const AuthorizationPolicyManifest m = ParseOne(Policy("  {}\n"));
  ASSERT_TRUE(m.policy.has_value());
  EXPECT_EQ(m.policy->action, model::PolicyAction::kAllow);
  EXPECT_FALSE(m.policy->selector.has_value());
  EXPECT_TRUE(m.policy->rules.empty());
}

TEST(AuthorizationPolicyParse, EntriesWithoutSourceOrOperationMatchAny) {
  const AuthorizationPolicyManifest m =
      ParseOne(Policy("  rules:\n  - from: [{}]\n    to: [{}]\n"));
  ASSERT_TRUE(m.policy.has_value()) << m.reject_message;
  ASSERT_EQ(m.policy->rules.size(), 1u);
  EXPECT_EQ(m.policy->rules[0].from, std::vector<model::PolicySource>(1));
  EXPECT_EQ(m.policy->rules[0].to, std::vector<model::PolicyOperation>(1));
}

struct Refused {
  std::string name;
  std::string spec;
  std::string reason;
  std::string message;  // the start of the message: field path, detail
};

class AuthorizationPolicyRefusal : public ::testing::TestWithParam<Refused> {};

TEST_P(AuthorizationPolicyRefusal, RefusesThePolicyWholeNamingFieldAndValue) {
  const AuthorizationPolicyManifest m = ParseOne(Policy(GetParam().spec));
  EXPECT_FALSE(m.policy.has_value());
  EXPECT_EQ(m.reject_reason, GetParam().reason);
  EXPECT_THAT(m.reject_message, ::testing::StartsWith(GetParam().message));
}

INSTANTIATE_TEST_SUITE_P(
    Fields, AuthorizationPolicyRefusal,
    ::testing::Values(
        Refused{"Methods", "  rules:\n  - to:\n    - operation: {methods: [GET]}\n",
                "UnsupportedField",
                "spec.rules[0].to[0].operation.methods: L7 field not supported (sockmesh "
                "enforces L4 only): [GET]"},
        Refused{"Paths", "  rules:\n  - to:\n    - operation: {ports: [\"80\"], paths: [/a]}\n",
                "UnsupportedField", "spec.rules[0].to[0].operation.paths: L7 field"},
        Refused{"Hosts", "  rules:\n  - to:\n    - operation: {hosts: [a.b]}\n", "UnsupportedField",
                "spec.rules[0].to[0].operation.hosts: L7 field"},
        Refused{"NotPorts", "  rules:\n  - to:\n    - operation: {notPorts: [\"80\"]}\n",
                "UnsupportedField", "spec.rules[0].to[0].operation.notPorts: not supported"},
        Refused{"RequestPrincipals",
                "  rules:\n  - from:\n    - source: {requestPrincipals: [\"*\"]}\n",
                "UnsupportedField", "spec.rules[0].from[0].source.requestPrincipals: L7 field"},
        Refused{"When", "  rules:\n  - when:\n    - {key: \"request.headers[x]\", values: [a]}\n",
                "UnsupportedField", "spec.rules[0].when: L7 conditions not supported"},
        Refused{"CustomAction", "  action: CUSTOM\n", "UnsupportedField", "spec.action: CUSTOM"},
        Refused{"UnknownAction", "  action: REJECT\n", "Invalid",
                "spec.action: invalid value \"REJECT\": must be ALLOW, DENY or AUDIT"},
        Refused{"BadAddress", "  rules:\n  - from:\n    - source: {ipBlocks: [10.0.0.300]}\n",
                "Invalid",
                "spec.rules[0].from[0].source.ipBlocks[0]: invalid value \"10.0.0.300\""},
        Refused{"BadPrefixLength", "  rules:\n  - from:\n    - source: {ipBlocks: [10.0.0.0/33]}\n",
                "Invalid", "spec.rules[0].from[0].source.ipBlocks[0]"},
        Refused{"PortOutOfRange", "  rules:\n  - to:\n    - operation: {ports: [\"70000\"]}\n",
                "Invalid",
                "spec.rules[0].to[0].operation.ports[0]: invalid value \"70000\": must be a port"},
        Refused{"StarInTheMiddle", "  rules:\n  - from:\n    - source: {principals: [\"a*b\"]}\n",
                "Invalid", "spec.rules[0].from[0].source.principals[0]: invalid value \"a*b\""},
        Refused{"MisspeltField", "  rules:\n  - from:\n    - source: {principal: [x]}\n", "Invalid",
                "spec.rules[0].from[0].source.principal: invalid value [x]: unknown field"},
        Refused{"SelectorWithoutMatchLabels", "  selector: {app: payment}\n", "Invalid",
                "spec.selector.app: invalid value \"payment\": unknown field"},
        Refused{"RulesNotAList", "  rules: {from: []}\n", "Invalid", "spec.rules: invalid value"}));

TEST(AuthorizationPolicyParse, BadMetadataFailsTheDocument) {
  absl::StatusOr<ParsedManifests> parsed = ParseManifests(
      "apiVersion: sockmesh.io/v1alpha1\nkind: AuthorizationPolicy\nmetadata: {name: Bad_Name}\n",
      "policy.yaml");
  ASSERT_FALSE(parsed.ok());
  EXPECT_THAT(std::string(parsed.status().message()),
              HasSubstr("policy.yaml: document 1 (AuthorizationPolicy): metadata.name: invalid "
                        "value \"Bad_Name\""));
}

absl::StatusOr<model::DesiredState> Build(const std::string& yaml,
                                          const model::DesiredState& previous = {}) {
  absl::StatusOr<ParsedManifests> parsed = ParseManifests(yaml, "all.yaml");
  if (!parsed.ok()) return parsed.status();
  return BuildDesiredState(*parsed, previous);
}

const model::PolicyCondition* Condition(const model::PolicyStatus& s, const std::string& type) {
  for (const model::PolicyCondition& c : s.conditions) {
    if (c.type == type) return &c;
  }
  return nullptr;
}

TEST(AuthorizationPolicyBuild, RefusedPolicyIsNotAppliedAndTheOthersAre) {
  absl::StatusOr<model::DesiredState> state = Build(std::string(kWorkloads) + R"(
---
apiVersion: sockmesh.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: deny-order, namespace: shop, generation: 2}
spec:
  selector: {matchLabels: {app: payment}}
  action: DENY
  rules:
  - from: [{source: {principals: [cluster.local/ns/shop/sa/order]}}]
---
apiVersion: sockmesh.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: l7, namespace: shop}
spec:
  action: DENY
  rules:
  - from: [{source: {principals: ["*"]}}]
    to: [{operation: {methods: [GET]}}]
---
apiVersion: sockmesh.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: nobody, namespace: shop}
spec:
  selector: {matchLabels: {app: missing}}
---
apiVersion: sockmesh.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: ghost, namespace: shop}
spec:
  selector: {matchLabels: {app: order}}
  action: AUDIT
  rules:
  - from: [{source: {principals: [cluster.local/ns/batch/sa/job]}}]
)");
  ASSERT_TRUE(state.ok()) << state.status();
  ASSERT_THAT(state->policy.policies, SizeIs(3));  // l7 left out whole
  ASSERT_THAT(state->policy_status, SizeIs(4));
  std::map<std::string, const model::PolicyStatus*> by_name;
  for (const auto& s : state->policy_status) by_name[s.name] = &s;

  const model::PolicyCondition* accepted = Condition(*by_name["deny-order"], "Accepted");
  ASSERT_NE(accepted, nullptr);
  EXPECT_TRUE(accepted->status);
  EXPECT_EQ(accepted->observed_generation, 2);
  EXPECT_TRUE(Condition(*by_name["deny-order"], "ResolvedRefs")->status);
  EXPECT_THAT(by_name["deny-order"]->selected_workloads, SizeIs(1));

  const model::PolicyCondition* refused = Condition(*by_name["l7"], "Accepted");
  ASSERT_NE(refused, nullptr);
  EXPECT_FALSE(refused->status);
  EXPECT_EQ(refused->reason, "UnsupportedField");
  EXPECT_THAT(refused->message,
              HasSubstr("spec.rules[0].to[0].operation.methods: L7 field not supported"));
  EXPECT_EQ(PolicyRefusal(*by_name["l7"]),
            "all.yaml: AuthorizationPolicy shop/l7: spec.rules[0].to[0].operation.methods: L7 "
            "field not supported (sockmesh enforces L4 only): [GET] (policy not applied)");
  EXPECT_EQ(PolicyRefusal(*by_name["deny-order"]), "");

  EXPECT_EQ(Condition(*by_name["nobody"], "ResolvedRefs")->reason, "NoMatchingWorkloads");
  EXPECT_TRUE(Condition(*by_name["nobody"], "Accepted")->status);
  EXPECT_EQ(Condition(*by_name["ghost"], "ResolvedRefs")->reason, "UnknownPrincipal");
  EXPECT_THAT(DescribePolicyStatus(*by_name["ghost"]),
              HasSubstr("AuthorizationPolicy shop/ghost (all.yaml): Accepted=True "
                        "ResolvedRefs=False/UnknownPrincipal: no workload has principal "
                        "cluster.local/ns/batch/sa/job yet"));

  // The DENY is in force: order -> payment denied, payment -> order allowed.
  const model::Workload& order = state->workloads.workloads.at({"shop", "order-1"});
  const model::PolicyVerdict v =
      model::EvaluatePolicy(state->policy, *model::IpAddress::Parse("127.0.40.1"), order.identity,
                            *model::IpAddress::Parse("127.0.40.2"), 7001);
  EXPECT_FALSE(v.allowed);
}

TEST(AuthorizationPolicyBuild, SamePolicyTwiceIsAnError) {
  const std::string p =
      "---\napiVersion: sockmesh.io/v1alpha1\nkind: AuthorizationPolicy\nmetadata: {name: a, "
      "namespace: shop}\n";
  absl::StatusOr<model::DesiredState> state = Build(std::string(kWorkloads) + p + p);
  ASSERT_FALSE(state.ok());
  EXPECT_THAT(
      std::string(state.status().message()),
      HasSubstr("AuthorizationPolicy shop/a is defined twice: in all.yaml and in all.yaml"));
}

TEST(AuthorizationPolicyWire, SnapshotDeltaAndUndo) {
  const std::string deny =
      "---\napiVersion: sockmesh.io/v1alpha1\nkind: AuthorizationPolicy\nmetadata: {name: d, "
      "namespace: shop}\nspec:\n  action: DENY\n  rules:\n  - from: [{source: {ipBlocks: "
      "[10.0.0.0/8], namespaces: [shop]}}]\n    to: [{operation: {ports: [\"80\"]}}]\n";
  absl::StatusOr<model::DesiredState> a = Build(kWorkloads);
  ASSERT_TRUE(a.ok());
  absl::StatusOr<model::DesiredState> b = Build(std::string(kWorkloads) + deny, *a);
  ASSERT_TRUE(b.ok()) << b.status();
  ASSERT_FALSE(b->policy.sets.empty());

  absl::StatusOr<model::DesiredState> round = model::FromSnapshot(model::MakeSnapshot(7, *b));
  ASSERT_TRUE(round.ok()) << round.status();
  EXPECT_EQ(round->policy, b->policy);

  EXPECT_FALSE(model::MakeDelta(1, *b, 2, *b).has_policy());
  const v1::Delta delta = model::MakeDelta(1, *a, 2, *b);
  ASSERT_TRUE(delta.has_policy());
  model::DesiredState follower = *a;
  follower.policy_status.clear();
  absl::StatusOr<model::DecodedDelta> decoded = model::DecodeDelta(delta, follower);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  model::DeltaUndo undo = model::ApplyDecodedDelta(*std::move(decoded), follower);
  EXPECT_EQ(follower.policy, b->policy);
  model::RevertDelta(std::move(undo), follower);
  EXPECT_EQ(follower.policy, a->policy);
}

TEST(AuthorizationPolicyWire, InconsistentCompiledPolicyIsRefused) {
  v1::CompiledPolicy p;
  v1::PolicyEndpoint* e = p.add_endpoints();
  e->set_endpoint_id(1);
  e->mutable_workload()->set_namespace_("shop");
  e->mutable_workload()->set_name("x");
  e->set_policy_set_id(9);
  absl::StatusOr<model::CompiledPolicy> decoded = model::FromProto(p);
  ASSERT_FALSE(decoded.ok());
  EXPECT_THAT(std::string(decoded.status().message()),
              HasSubstr("endpoints[0]: policy_set_id 9 is not in sets"));

  v1::CompiledPolicy rows;
  v1::PolicySet* set = rows.add_sets();
  set->set_policy_set_id(1);
  set->add_rows()->set_deny_policy_id(4);
  EXPECT_THAT(std::string(model::FromProto(rows).status().message()),
              HasSubstr("sets[0].rows[0]: policy id 4 is not in policies"));
}

}  // namespace
}  // namespace sockmesh::sources
