// SPDX-License-Identifier: Apache-2.0
#ifndef SOCKMESH_TESTS_SUPPORT_TEST_DATAPATH_H_
#define SOCKMESH_TESTS_SUPPORT_TEST_DATAPATH_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "control_plane/model/service_model.h"
#include "tests/support/model_builders.h"
#include "tests/support/scoped_cgroup.h"
#include "userspace/agent/datapath.h"
#include "userspace/agent/map_sync.h"

namespace sockmesh::testing {

// The real datapath, in-process: a throwaway cgroup that this test process joins, the BPF
// programs attached to it under a unique pin instance, and MapSync to program services. The
// destructor detaches, unpins and removes the cgroup, also when the test failed.
class TestDatapath {
 public:
  // `short_circuit` also attaches the same-node short-circuit (sockops + sk_msg).
  static absl::StatusOr<std::unique_ptr<TestDatapath>> Create(uint32_t table_size = 1021,
                                                              agent::MapSizes sizes = {},
                                                              bool short_circuit = false);
  ~TestDatapath();

  agent::SyncReport Apply(const model::DesiredState& state);
  agent::Datapath& datapath() { return *datapath_; }
  const std::string& instance() const { return instance_; }
  const std::string& cgroup_path() const { return cgroup_->path(); }
  const std::string& bpffs_root() const { return bpffs_root_; }
  ScopedCgroup& cgroup() { return *cgroup_; }
  // The datapath's SM_CNT_* counter `index`, summed over CPUs.
  uint64_t Counter(int index);

 private:
  TestDatapath() = default;
  std::string bpffs_root_ = "/sys/fs/bpf";
  std::string instance_;
  std::optional<ScopedCgroup> cgroup_;
  std::unique_ptr<agent::Datapath> datapath_;
  std::optional<agent::MapSync> sync_;
};

// A unique datapath instance name for this process ("test-<pid>-<n>").
std::string UniqueInstanceName();

}  // namespace sockmesh::testing

#endif  // SOCKMESH_TESTS_SUPPORT_TEST_DATAPATH_H_
