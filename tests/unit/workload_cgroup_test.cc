// SPDX-License-Identifier: Apache-2.0
#include "userspace/agent/workload_cgroup.h"

#include <gtest/gtest.h>

namespace sockmesh::agent {
namespace {

TEST(WorkloadCgroup, ParsesNamespaceAndName) {
  absl::StatusOr<WorkloadName> w = ParseWorkloadName("shop/order-v1");
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(w->namespace_name, "shop");
  EXPECT_EQ(w->name, "order-v1");
  EXPECT_EQ(w->ToString(), "shop/order-v1");
}

TEST(WorkloadCgroup, RejectsWhatIsNotTwoDnsLabels) {
  for (const char* bad : {"", "shop", "shop/", "/order", "a/b/c", "Shop/order", "shop/-order",
                          "shop/order_v1", "../etc/x", "shop/.."}) {
    absl::StatusOr<WorkloadName> w = ParseWorkloadName(bad);
    EXPECT_FALSE(w.ok()) << bad;
    if (!w.ok()) EXPECT_NE(w.status().message().find(bad), std::string::npos) << w.status();
  }
}

TEST(WorkloadCgroup, PathIsNamespaceThenName) {
  EXPECT_EQ(WorkloadCgroupPath("/sys/fs/cgroup/mesh/", {"shop", "user"}),
            "/sys/fs/cgroup/mesh/shop/user");
}

}  // namespace
}  // namespace sockmesh::agent
