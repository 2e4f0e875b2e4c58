// SPDX-License-Identifier: Apache-2.0
// The policy compiler checked against Istio's evaluation order: each case names the verdict a
// connection must get, evaluated on the compiled rows by the kernel's lookup (policy_evaluator),
// and every case is also compared over a grid of sources, addresses and ports with a direct
// reading of the policies (IstioVerdict below), which knows nothing about rows or prefixes.
#include "control_plane/model/policy_compiler.h"

#include <gtest/gtest.h>

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "control_plane/model/identity_allocator.h"
#include "control_plane/model/policy_evaluator.h"

namespace sockmesh::model {
namespace {

IpAddress Ip(const std::string& text) { return *IpAddress::Parse(text); }

IpPrefix Block(const std::string& ip, uint8_t len) { return IpPrefix{.addr = Ip(ip), .len = len}; }

// shop: payment-1, payment-2 (sa payment, app=payment), order (sa order, app=order)
// web: frontend (sa frontend), admin (sa admin-tool)
// sockmesh-system: mesh-gw (sa gateway)
WorkloadState Mesh() {
  WorkloadState s;
  auto add = [&s](std::string ns, std::string name, std::string sa, Labels labels, std::string ip) {
    Workload w{.namespace_name = ns,
               .name = name,
               .service_account = sa,
               .labels = std::move(labels),
               .ips = {Ip(ip)}};
    s.workloads[w.key()] = w;
  };
  add("shop", "payment-1", "payment", {{"app", "payment"}}, "10.0.0.1");
  add("shop", "payment-2", "payment", {{"app", "payment"}}, "10.0.0.3");
  add("shop", "order", "order", {{"app", "order"}}, "10.0.0.2");
  add("web", "frontend", "frontend", {{"app", "frontend"}}, "10.0.1.1");
  add("web", "admin", "admin-tool", {{"app", "admin"}}, "fd00::2");
  add("sockmesh-system", "mesh-gw", "gateway", {}, "10.0.9.9");
  std::set<std::string> principals;
  for (const auto& [key, w] : s.workloads) principals.insert(w.principal());
  s.identities = AllocateIdentities(principals, {});
  for (auto& [key, w] : s.workloads) w.identity = s.identities.at(w.principal());
  s.namespaces["shop"] = {};
  return s;
}

AuthorizationPolicy Policy(std::string ns, std::string name, PolicyAction action,
                           std::optional<Labels> selector, std::vector<PolicyRule> rules) {
  return AuthorizationPolicy{.namespace_name = std::move(ns),
                             .name = std::move(name),
                             .selector = std::move(selector),
                             .action = action,
                             .rules = std::move(rules)};
}

PolicyRule From(PolicySource source, std::vector<uint16_t> ports = {}) {
  PolicyRule r;
  r.from.push_back(std::move(source));
  if (!ports.empty()) r.to.push_back(PolicyOperation{.ports = std::move(ports)});
  return r;
}

const Labels kPayment = {{"app", "payment"}};

// Istio's order read straight off the policies: a DENY policy with a matching rule denies; a
// workload no ALLOW policy selects is allowed; a matching ALLOW allows; otherwise denied.
struct Expected {
  bool allowed;
  std::string policy;  // "ns/name" of the deciding DENY/ALLOW policy, "" when none
  std::string audit;
};

bool SourceMatches(const PolicySource& s, const std::optional<std::string>& principal,
                   const IpAddress& addr) {
  auto any = [](const std::vector<std::string>& patterns, const std::string& v) {
    for (const std::string& p : patterns) {
      if (MatchesPattern(p, v)) return true;
    }
    return false;
  };
  auto in_blocks = [&addr](const std::vector<IpPrefix>& blocks) {
    for (const IpPrefix& b : blocks) {
      if (b.Contains(addr)) return true;
    }
    return false;
  };
  std::optional<std::string> ns;
  if (principal.has_value()) {
    const size_t at = principal->find("/ns/") + 4;
    ns = principal->substr(at, principal->find("/sa/") - at);
  }
  if (!s.principals.empty() && !(principal && any(s.principals, *principal))) return false;
  if (!s.not_principals.empty() && principal && any(s.not_principals, *principal)) return false;
  if (!s.namespaces.empty() && !(ns && any(s.namespaces, *ns))) return false;
  if (!s.not_namespaces.empty() && ns && any(s.not_namespaces, *ns)) return false;
  if (!s.ip_blocks.empty() && !in_blocks(s.ip_blocks)) return false;
  if (!s.not_ip_blocks.empty() && in_blocks(s.not_ip_blocks)) return false;
  return true;
}

bool RuleMatches(const PolicyRule& r, const std::optional<std::string>& principal,
                 const IpAddress& addr, uint16_t port) {
  bool from = r.from.empty();
  for (const PolicySource& s : r.from) from = from || SourceMatches(s, principal, addr);
  bool to = r.to.empty();
  for (const PolicyOperation& op : r.to) {
    to = to || op.ports.empty() ||
         std::find(op.ports.begin(), op.ports.end(), port) != op.ports.end();
  }
  return from && to;
}

Expected IstioVerdict(std::vector<AuthorizationPolicy> policies, const Workload& dest,
                      const std::optional<std::string>& principal, const IpAddress& addr,
                      uint16_t port) {
  std::sort(policies.begin(), policies.end(), [](const auto& a, const auto& b) {
    return std::tie(a.namespace_name, a.name) < std::tie(b.namespace_name, b.name);
  });
  auto selects = [&dest](const AuthorizationPolicy& p) {
    if (p.namespace_name != kDefaultRootNamespace && p.namespace_name != dest.namespace_name) {
      return false;
    }
    if (!p.selector) return true;
    for (const auto& [k, v] : *p.selector) {
      auto it = dest.labels.find(k);
      if (it == dest.labels.end() || it->second != v) return false;
    }
    return true;
  };
  auto matches = [&](const AuthorizationPolicy& p) {
    for (const PolicyRule& r : p.rules) {
      if (RuleMatches(r, principal, addr, port)) return true;
    }
    return false;
  };
  auto first = [&](PolicyAction action) -> std::string {
    for (const AuthorizationPolicy& p : policies) {
      if (p.action == action && selects(p) && matches(p)) return p.namespace_name + "/" + p.name;
    }
    return "";
  };
  Expected e{.allowed = true, .policy = "", .audit = first(PolicyAction::kAudit)};
  if (std::string deny = first(PolicyAction::kDeny); !deny.empty()) {
    return Expected{.allowed = false, .policy = deny, .audit = e.audit};
  }
  bool has_allow = false;
  for (const AuthorizationPolicy& p : policies) {
    has_allow = has_allow || (p.action == PolicyAction::kAllow && selects(p));
  }
  if (!has_allow) return e;
  e.policy = first(PolicyAction::kAllow);
  e.allowed = !e.policy.empty();
  return e;
}

std::string PolicyName(const CompiledPolicy& c, uint32_t id) {
  for (const PolicyRef& r : c.policies) {
    if (r.policy_id == id) return r.namespace_name + "/" + r.name;
  }
  return "";
}

class PolicyCompilerTest : public ::testing::Test {
 protected:
  // The verdict through the compiled rows, in Expected's terms.
  Expected Decide(const std::string& dest, const std::optional<std::string>& source_workload,
                  const std::string& source_addr, uint16_t port) {
    const PolicyCompilation c = CompilePolicies(policies_, mesh_, {});
    const Workload& d = Find(dest);
    const uint32_t identity = source_workload ? Find(*source_workload).identity : kIdentityUnknown;
    const PolicyVerdict v =
        EvaluatePolicy(c.compiled, d.ips.front(), identity, Ip(source_addr), port);
    return Expected{.allowed = v.allowed,
                    .policy = PolicyName(c.compiled, v.policy_id),
                    .audit = PolicyName(c.compiled, v.audit_policy_id)};
  }

  const Workload& Find(const std::string& key) const {
    for (const auto& [k, w] : mesh_.workloads) {
      if (k.ToString() == key) return w;
    }
    ADD_FAILURE() << "no workload " << key;
    return mesh_.workloads.begin()->second;
  }

  // Every destination x every source (each workload's identity and the unknown one) x addresses
  // x ports: the compiled verdict equals Istio's.
  void ExpectSameAsIstioEverywhere() {
    const PolicyCompilation c = CompilePolicies(policies_, mesh_, {});
    const std::vector<std::string> addrs = {"10.0.0.2",   "10.0.1.1",   "10.1.2.3",
                                            "10.255.0.1", "127.0.30.7", "192.168.1.1",
                                            "fd00::2",    "fd00::1:5",  "::ffff:10.1.2.3"};
    std::vector<std::optional<std::string>> principals = {std::nullopt};
    for (const auto& [k, w] : mesh_.workloads) principals.push_back(w.principal());
    for (const auto& [dk, dest] : mesh_.workloads) {
      for (const auto& principal : principals) {
        const uint32_t identity = principal ? mesh_.identities.at(*principal) : kIdentityUnknown;
        for (const std::string& a : addrs) {
          IpAddress addr = Ip(a);
          for (uint16_t port : {80, 7001, 9000}) {
            IpAddress plain = addr;
            if (a.starts_with("::ffff:")) plain = Ip(a.substr(7));
            const Expected want = IstioVerdict(policies_, dest, principal, plain, port);
            const PolicyVerdict got =
                EvaluatePolicy(c.compiled, dest.ips.front(), identity, addr, port);
            SCOPED_TRACE(dk.ToString() + " <- " + principal.value_or("unknown") + " " + a + ":" +
                         std::to_string(port));
            EXPECT_EQ(got.allowed, want.allowed);
            EXPECT_EQ(PolicyName(c.compiled, got.policy_id), want.policy);
            EXPECT_EQ(PolicyName(c.compiled, got.audit_policy_id), want.audit);
          }
        }
      }
    }
  }

  void CheckRowsUnique() {
    const PolicyCompilation c = CompilePolicies(policies_, mesh_, {});
    for (const PolicySet& s : c.compiled.sets) {
      std::set<std::tuple<uint32_t, uint16_t, std::optional<IpPrefix>>> keys;
      for (const PolicyRow& r : s.rows) {
        EXPECT_TRUE(keys.insert({r.source_identity, r.port, r.source_prefix}).second);
      }
    }
  }

  void TearDown() override {
    ExpectSameAsIstioEverywhere();
    CheckRowsUnique();
  }

  WorkloadState mesh_ = Mesh();
  std::vector<AuthorizationPolicy> policies_;
};

TEST_F(PolicyCompilerTest, DenyMatchDeniesAndOthersPassWhenNoAllowSelects) {
  policies_ = {Policy("shop", "deny-order", PolicyAction::kDeny, kPayment,
                      {From({.principals = {"cluster.local/ns/shop/sa/order"}})})};
  EXPECT_EQ(Decide("shop/payment-1", "shop/order", "10.0.0.2", 80).allowed, false);
  EXPECT_EQ(Decide("shop/payment-1", "shop/order", "10.0.0.2", 80).policy, "shop/deny-order");
  const Expected other = Decide("shop/payment-1", "web/frontend", "10.0.1.1", 80);
  EXPECT_TRUE(other.allowed);
  EXPECT_EQ(other.policy, "");
  // Not selected: the order workload itself.
  EXPECT_TRUE(Decide("shop/order", "shop/order", "10.0.0.2", 80).allowed);
}

TEST_F(PolicyCompilerTest, AllowMatchAllowsAndEverythingElseIsDenied) {
  policies_ = {Policy("shop", "allow-frontend", PolicyAction::kAllow, kPayment,
                      {From({.principals = {"cluster.local/ns/web/sa/frontend"}})})};
  const Expected allowed = Decide("shop/payment-1", "web/frontend", "10.0.1.1", 80);
  EXPECT_TRUE(allowed.allowed);
  EXPECT_EQ(allowed.policy, "shop/allow-frontend");
  const Expected denied = Decide("shop/payment-1", "shop/order", "10.0.0.2", 80);
  EXPECT_FALSE(denied.allowed);
  EXPECT_EQ(denied.policy, "");
  EXPECT_FALSE(Decide("shop/payment-1", std::nullopt, "192.168.1.1", 80).allowed);
}

TEST_F(PolicyCompilerTest, AuditOnlyCounts) {
  policies_ = {Policy("shop", "audit-all", PolicyAction::kAudit, kPayment, {PolicyRule{}})};
  const Expected e = Decide("shop/payment-1", "shop/order", "10.0.0.2", 80);
  EXPECT_TRUE(e.allowed);
  EXPECT_EQ(e.audit, "shop/audit-all");
  const PolicyCompilation c = CompilePolicies(policies_, mesh_, {});
  ASSERT_EQ(c.compiled.sets.size(), 1u);
  EXPECT_FALSE(c.compiled.sets[0].has_allow);
}

TEST_F(PolicyCompilerTest, EmptySpecDeniesEverything) {
  policies_ = {Policy("shop", "deny-all", PolicyAction::kAllow, std::nullopt, {})};
  EXPECT_FALSE(Decide("shop/payment-1", "shop/order", "10.0.0.2", 80).allowed);
  EXPECT_FALSE(Decide("shop/order", "shop/payment-1", "10.0.0.1", 7001).allowed);
  EXPECT_TRUE(Decide("web/frontend", "shop/order", "10.0.0.2", 80).allowed);
  const PolicyCompilation c = CompilePolicies(policies_, mesh_, {});
  ASSERT_EQ(c.compiled.sets.size(), 1u);
  EXPECT_TRUE(c.compiled.sets[0].has_allow);
  EXPECT_TRUE(c.compiled.sets[0].rows.empty());
}

TEST_F(PolicyCompilerTest, RootNamespacePolicyAppliesToTheWholeMesh) {
  policies_ = {
      Policy("sockmesh-system", "no-web", PolicyAction::kDeny, std::nullopt,
             {From({.namespaces = {"web"}})}),
      Policy("sockmesh-system", "payment-port", PolicyAction::kDeny, kPayment, {From({}, {9000})})};
  EXPECT_FALSE(Decide("shop/order", "web/frontend", "10.0.1.1", 80).allowed);
  EXPECT_FALSE(Decide("sockmesh-system/mesh-gw", "web/admin", "fd00::2", 80).allowed);
  EXPECT_TRUE(Decide("web/frontend", "shop/order", "10.0.0.2", 80).allowed);
  EXPECT_FALSE(Decide("shop/payment-2", "shop/order", "10.0.0.2", 9000).allowed);
  EXPECT_TRUE(Decide("shop/order", "shop/payment-1", "10.0.0.1", 9000).allowed);
}

TEST_F(PolicyCompilerTest, PolicyInOtherNamespaceDoesNotSelect) {
  policies_ = {Policy("web", "deny-all-in-web", PolicyAction::kDeny, std::nullopt, {PolicyRule{}})};
  EXPECT_TRUE(Decide("shop/order", "web/frontend", "10.0.1.1", 80).allowed);
  EXPECT_FALSE(Decide("web/frontend", "shop/order", "10.0.0.2", 80).allowed);
}

TEST_F(PolicyCompilerTest, PrincipalWildcards) {
  policies_ = {Policy("shop", "allow-shop-sa", PolicyAction::kAllow, kPayment,
                      {From({.principals = {"cluster.local/ns/shop/*"}}),
                       From({.principals = {"*/sa/frontend"}})})};
  EXPECT_TRUE(Decide("shop/payment-1", "shop/order", "10.0.0.2", 80).allowed);
  EXPECT_TRUE(Decide("shop/payment-1", "web/frontend", "10.0.1.1", 80).allowed);
  EXPECT_FALSE(Decide("shop/payment-1", "web/admin", "fd00::2", 80).allowed);
  EXPECT_FALSE(Decide("shop/payment-1", std::nullopt, "10.1.2.3", 80).allowed);
}

TEST_F(PolicyCompilerTest, StarPrincipalMatchesEveryKnownIdentityButNotUnknown) {
  policies_ = {Policy("shop", "any-authenticated", PolicyAction::kAllow, kPayment,
                      {From({.principals = {"*"}})})};
  EXPECT_TRUE(Decide("shop/payment-1", "web/admin", "fd00::2", 80).allowed);
  EXPECT_FALSE(Decide("shop/payment-1", std::nullopt, "10.1.2.3", 80).allowed);
}

TEST_F(PolicyCompilerTest, NotPrincipalsAndNotNamespacesMatchTheUnknownIdentity) {
  policies_ = {
      Policy("shop", "deny-not-shop", PolicyAction::kDeny, kPayment,
             {From({.not_namespaces = {"shop"}})}),
      Policy("shop", "deny-not-order", PolicyAction::kDeny, {{{"app", "order"}}},
             {From({.not_principals = {"cluster.local/ns/shop/sa/payment", "*/sa/frontend"}})})};
  EXPECT_FALSE(Decide("shop/payment-1", std::nullopt, "192.168.1.1", 80).allowed);
  EXPECT_FALSE(Decide("shop/payment-1", "web/frontend", "10.0.1.1", 80).allowed);
  EXPECT_TRUE(Decide("shop/payment-1", "shop/order", "10.0.0.2", 80).allowed);
  EXPECT_FALSE(Decide("shop/order", std::nullopt, "10.1.2.3", 80).allowed);
  EXPECT_TRUE(Decide("shop/order", "web/frontend", "10.0.1.1", 80).allowed);
  EXPECT_TRUE(Decide("shop/order", "shop/payment-2", "10.0.0.3", 80).allowed);
  EXPECT_FALSE(Decide("shop/order", "web/admin", "fd00::2", 80).allowed);
}

TEST_F(PolicyCompilerTest, IpBlocksWithOverlappingNotIpBlocks) {
  policies_ = {
      Policy("shop", "allow-ten", PolicyAction::kAllow, kPayment,
             {From({.ip_blocks = {Block("10.0.0.0", 8), Block("fd00::", 16)},
                    .not_ip_blocks = {Block("10.255.0.0", 16), Block("fd00::1:0", 112)}})}),
      Policy("shop", "deny-one", PolicyAction::kDeny, kPayment,
             {From({.ip_blocks = {Block("10.1.2.3", 32)}}, {7001})}),
      Policy("shop", "deny-outside", PolicyAction::kDeny, {{{"app", "order"}}},
             {From({.not_ip_blocks = {Block("10.0.0.0", 8), Block("127.0.0.0", 8)}})})};
  EXPECT_TRUE(Decide("shop/payment-1", std::nullopt, "10.1.2.3", 80).allowed);
  EXPECT_FALSE(Decide("shop/payment-1", std::nullopt, "10.1.2.3", 7001).allowed);
  EXPECT_FALSE(Decide("shop/payment-1", std::nullopt, "10.255.0.1", 80).allowed);
  EXPECT_TRUE(Decide("shop/payment-1", std::nullopt, "fd00::2", 80).allowed);
  EXPECT_FALSE(Decide("shop/payment-1", std::nullopt, "fd00::1:5", 80).allowed);
  EXPECT_FALSE(Decide("shop/order", std::nullopt, "192.168.1.1", 80).allowed);
  EXPECT_FALSE(Decide("shop/order", std::nullopt, "fd00::2", 80).allowed);
  EXPECT_TRUE(Decide("shop/order", std::nullopt, "127.0.30.7", 80).allowed);
  const PolicyCompilation c = CompilePolicies(policies_, mesh_, {});
  for (const PolicySet& s : c.compiled.sets) EXPECT_TRUE(s.source_address_dependent);
}

TEST_F(PolicyCompilerTest, IpBlocksAndPrincipalsAreAnded) {
  policies_ = {Policy("shop", "order-from-its-subnet", PolicyAction::kAllow, kPayment,
                      {From({.principals = {"cluster.local/ns/shop/sa/order"},
                             .ip_blocks = {Block("10.0.0.0", 24)}})})};
  EXPECT_TRUE(Decide("shop/payment-1", "shop/order", "10.0.0.2", 80).allowed);
  EXPECT_FALSE(Decide("shop/payment-1", "shop/order", "10.1.2.3", 80).allowed);
  EXPECT_FALSE(Decide("shop/payment-1", "web/frontend", "10.0.0.2", 80).allowed);
}

TEST_F(PolicyCompilerTest, Ports) {
  policies_ = {Policy("shop", "allow-7001", PolicyAction::kAllow, kPayment,
                      {From({.namespaces = {"web"}}, {7001, 9000})})};
  EXPECT_TRUE(Decide("shop/payment-1", "web/frontend", "10.0.1.1", 7001).allowed);
  EXPECT_TRUE(Decide("shop/payment-1", "web/frontend", "10.0.1.1", 9000).allowed);
  EXPECT_FALSE(Decide("shop/payment-1", "web/frontend", "10.0.1.1", 80).allowed);
}

TEST_F(PolicyCompilerTest, SeveralPoliciesOnOneWorkloadLowestIdWins) {
  policies_ = {Policy("shop", "b-allow-web", PolicyAction::kAllow, kPayment,
                      {From({.namespaces = {"web"}})}),
               Policy("shop", "a-allow-frontend", PolicyAction::kAllow, std::nullopt,
                      {From({.principals = {"cluster.local/ns/web/sa/frontend"}})}),
               Policy("shop", "c-deny-admin-7001", PolicyAction::kDeny, kPayment,
                      {From({.principals = {"*admin-tool"}}, {7001})}),
               Policy("shop", "d-audit-web", PolicyAction::kAudit, kPayment,
                      {From({.namespaces = {"web"}})})};
  const Expected e = Decide("shop/payment-1", "web/frontend", "10.0.1.1", 80);
  EXPECT_TRUE(e.allowed);
  EXPECT_EQ(e.policy, "shop/a-allow-frontend");
  EXPECT_EQ(e.audit, "shop/d-audit-web");
  EXPECT_EQ(Decide("shop/payment-1", "web/admin", "fd00::2", 80).policy, "shop/b-allow-web");
  EXPECT_EQ(Decide("shop/payment-1", "web/admin", "fd00::2", 7001).policy,
            "shop/c-deny-admin-7001");
  EXPECT_FALSE(Decide("shop/order", "web/admin", "fd00::2", 80).allowed);
}

TEST_F(PolicyCompilerTest, EndpointsWithTheSameListShareASet) {
  policies_ = {
      Policy("shop", "allow-web", PolicyAction::kAllow, kPayment, {From({.namespaces = {"web"}})}),
      Policy("shop", "deny-unknown", PolicyAction::kDeny, std::nullopt,
             {From({.not_namespaces = {"*"}})})};
  const PolicyCompilation c = CompilePolicies(policies_, mesh_, {});
  ASSERT_EQ(c.compiled.endpoints.size(), 3u);  // payment-1, payment-2, order
  ASSERT_EQ(c.compiled.sets.size(), 2u);
  std::map<std::string, uint32_t> set_of;
  for (const PolicyEndpoint& e : c.compiled.endpoints)
    set_of[e.workload.ToString()] = e.policy_set_id;
  EXPECT_EQ(set_of["shop/payment-1"], set_of["shop/payment-2"]);
  EXPECT_NE(set_of["shop/payment-1"], set_of["shop/order"]);
  EXPECT_FALSE(Decide("shop/order", std::nullopt, "10.1.2.3", 80).allowed);
}

TEST_F(PolicyCompilerTest, UnknownExactPrincipalGetsItsNumberAndIsReported) {
  policies_ = {Policy("shop", "allow-batch", PolicyAction::kAllow, kPayment,
                      {From({.principals = {"cluster.local/ns/batch/sa/report"},
                             .namespaces = {"batch", "web"}})})};
  const PolicyCompilation c = CompilePolicies(policies_, mesh_, {});
  ASSERT_EQ(c.compiled.sets.size(), 1u);
  ASSERT_EQ(c.compiled.sets[0].rows.size(), 1u);
  EXPECT_EQ(c.compiled.sets[0].rows[0].source_identity,
            PreferredIdentity("cluster.local/ns/batch/sa/report"));
  ASSERT_EQ(c.resolutions.size(), 1u);
  EXPECT_EQ(c.resolutions[0].unknown_principals,
            std::vector<std::string>{"cluster.local/ns/batch/sa/report"});
  EXPECT_EQ(c.resolutions[0].unknown_namespaces, std::vector<std::string>{"batch"});
  EXPECT_EQ(c.resolutions[0].selected_workloads.size(), 2u);
}

TEST_F(PolicyCompilerTest, ShorterPrefixIdsAreFoldedIntoLongerOnes) {
  policies_ = {Policy("shop", "a-deny-host", PolicyAction::kDeny, kPayment,
                      {From({.ip_blocks = {Block("10.0.0.0", 8)}})}),
               Policy("shop", "b-allow-all", PolicyAction::kAllow, kPayment, {PolicyRule{}}),
               Policy("shop", "c-allow-sub", PolicyAction::kAllow, kPayment,
                      {From({.ip_blocks = {Block("10.1.0.0", 16)}})})};
  const PolicyCompilation c = CompilePolicies(policies_, mesh_, {});
  ASSERT_EQ(c.compiled.sets.size(), 1u);
  for (const PolicyRow& r : c.compiled.sets[0].rows) {
    if (r.source_prefix.has_value() && r.source_prefix->len == 16) {
      EXPECT_EQ(r.deny_policy_id, 1u);
      EXPECT_EQ(r.allow_policy_id, 2u);  // the prefix-less row's allow, lower than its own 3
    }
  }
}

TEST(PolicyCompilerEndpointIds, StayWhileTheWorkloadExists) {
  WorkloadState mesh = Mesh();
  const std::vector<AuthorizationPolicy> policies = {
      Policy("shop", "p", PolicyAction::kDeny, std::nullopt, {PolicyRule{}})};
  const CompiledPolicy first = CompilePolicies(policies, mesh, {}).compiled;
  uint32_t order_id = 0;
  for (const PolicyEndpoint& e : first.endpoints) {
    if (e.workload.name == "order") order_id = e.endpoint_id;
  }
  mesh.workloads.erase(WorkloadKey{"shop", "payment-1"});
  Workload extra = mesh.workloads.at(WorkloadKey{"shop", "payment-2"});
  extra.name = "aaa-new";
  mesh.workloads[extra.key()] = extra;
  const CompiledPolicy second = CompilePolicies(policies, mesh, first).compiled;
  std::set<uint32_t> ids;
  for (const PolicyEndpoint& e : second.endpoints) {
    EXPECT_TRUE(ids.insert(e.endpoint_id).second);
    if (e.workload.name == "order") EXPECT_EQ(e.endpoint_id, order_id);
  }
}

TEST(SubtractPrefixes, CutsAroundTheHole) {
  const std::vector<IpPrefix> out =
      SubtractPrefixes({Block("10.0.0.0", 8)}, {Block("10.0.0.0", 10)});
  EXPECT_EQ(out, (std::vector<IpPrefix>{Block("10.64.0.0", 10), Block("10.128.0.0", 9)}));
  EXPECT_TRUE(SubtractPrefixes({Block("10.1.0.0", 16)}, {Block("10.0.0.0", 8)}).empty());
  EXPECT_EQ(SubtractPrefixes({Block("10.1.0.0", 16)}, {Block("fd00::", 8)}),
            std::vector<IpPrefix>{Block("10.1.0.0", 16)});
}

TEST(PolicyEvaluator, NotAnEndpointIsAllowedAndUncounted) {
  const PolicyVerdict v =
      EvaluatePolicy(CompiledPolicy{}, Ip("10.0.0.1"), kIdentityUnknown, Ip("10.0.0.2"), 80);
  EXPECT_TRUE(v.allowed);
  EXPECT_EQ(v.reason, PolicyVerdictReason::kNotSelected);
  EXPECT_EQ(v.endpoint_id, 0u);
}

}  // namespace
}  // namespace sockmesh::model
