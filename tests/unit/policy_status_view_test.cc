// SPDX-License-Identifier: Apache-2.0
// Policy status where users see it: `sockmeshctl validate` (text and JSON; a refused policy makes
// the manifests invalid, naming the field), the control plane's ListPolicies answer for the
// current version, and `sockmeshctl policies` (table and JSON) printing it.
#include "userspace/ctl/policy_status_view.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "control_plane/model/policy_conversion.h"
#include "control_plane/server/control_plane_service.h"
#include "control_plane/sources/manifest_parser.h"
#include "control_plane/sources/workload_builder.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "userspace/ctl/manifest_validation.h"

namespace sockmesh::ctl {
namespace {

using ::testing::HasSubstr;
using ::testing::SizeIs;

constexpr char kManifests[] = R"(apiVersion: v1
kind: Pod
metadata: {name: pay-1, namespace: shop, labels: {app: payment}}
spec: {serviceAccountName: payment}
status: {podIP: 127.0.41.1}
---
apiVersion: sockmesh.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: allow-order, namespace: shop}
spec:
  selector: {matchLabels: {app: payment}}
  rules: [{from: [{source: {principals: [cluster.local/ns/shop/sa/order]}}]}]
---
apiVersion: sockmesh.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: get-only, namespace: shop}
spec:
  rules: [{to: [{operation: {paths: [/pay]}}]}]
)";

std::string WriteTemp(const std::string& content) {
  char tmpl[] = "/tmp/sockmesh-policy-view-XXXXXX.yaml";
  const int fd = ::mkstemps(tmpl, 5);
  EXPECT_GE(fd, 0);
  ::close(fd);
  std::ofstream(tmpl) << content;
  return tmpl;
}

TEST(PolicyStatusView, ValidateReportsStatusAndRefusesTheRefusedPolicy) {
  const std::string path = WriteTemp(kManifests);
  absl::StatusOr<ValidationResult> r = ValidateManifests(path);
  std::filesystem::remove(path);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->valid());
  ASSERT_THAT(r->errors, SizeIs(1));
  EXPECT_THAT(r->errors[0], HasSubstr("AuthorizationPolicy shop/get-only: "
                                      "spec.rules[0].to[0].operation.paths: L7 field"));
  const std::string text = FormatValidationText(path, *r);
  EXPECT_THAT(text, HasSubstr("policy: AuthorizationPolicy shop/allow-order"));
  EXPECT_THAT(text, HasSubstr("Accepted=True ResolvedRefs=False/UnknownPrincipal"));
  const nlohmann::json j = nlohmann::json::parse(FormatValidationJson(path, *r));
  ASSERT_EQ(j["policies"].size(), 2u);
  EXPECT_EQ(j["policies"][1]["name"], "get-only");
  EXPECT_EQ(j["policies"][1]["conditions"][0]["status"], "False");
  EXPECT_EQ(j["policies"][1]["conditions"][0]["reason"], "UnsupportedField");
  EXPECT_EQ(j["policies"][0]["selectedWorkloads"][0], "shop/pay-1");
}

TEST(PolicyStatusView, ListPoliciesServesTheCurrentVersionAndCtlPrintsIt) {
  absl::StatusOr<sources::ParsedManifests> parsed = sources::ParseManifests(kManifests, "p.yaml");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  absl::StatusOr<model::DesiredState> state = sources::BuildDesiredState(*parsed, {});
  ASSERT_TRUE(state.ok()) << state.status();
  cp::VersionedState versioned;
  ASSERT_TRUE(versioned.Update(*state));
  cp::ControlPlaneService service(&versioned, nullptr);
  v1::ListPoliciesResponse response;
  ASSERT_TRUE(service.ListPolicies(nullptr, nullptr, &response).ok());
  EXPECT_EQ(response.current_version(), 2u);
  ASSERT_EQ(response.policies_size(), 2);

  std::vector<model::PolicyStatus> statuses;
  for (const auto& p : response.policies()) statuses.push_back(model::FromProto(p));
  EXPECT_EQ(statuses, state->policy_status);  // survives the wire
  const std::string table = FormatPolicyTable(statuses);
  EXPECT_THAT(table, HasSubstr("NAME         NAMESPACE  ACTION  ACCEPTED  REASON"));
  EXPECT_THAT(table,
              HasSubstr("allow-order  shop       ALLOW   True      UnknownPrincipal  shop/pay-1"));
  EXPECT_THAT(table, HasSubstr("get-only     shop       ALLOW   False     UnsupportedField  -"));
  const nlohmann::json j = nlohmann::json::parse(FormatPoliciesJson(2, statuses));
  EXPECT_EQ(j["version"], 2);
  EXPECT_EQ(j["policies"][1]["conditions"][0]["type"], "Accepted");
}

}  // namespace
}  // namespace sockmesh::ctl
