// SPDX-License-Identifier: Apache-2.0
#include "tests/support/test_datapath.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>

#include "absl/strings/str_cat.h"

namespace sockmesh::testing {

std::string UniqueInstanceName() {
  static std::atomic<int> counter{0};
  return absl::StrCat("test-", ::getpid(), "-", counter++);
}

absl::StatusOr<std::unique_ptr<TestDatapath>> TestDatapath::Create(uint32_t table_size,
                                                                   agent::MapSizes sizes,
                                                                   bool short_circuit) {
  std::unique_ptr<TestDatapath> t(new TestDatapath());
  absl::StatusOr<ScopedCgroup> cg = ScopedCgroup::Create();
  if (!cg.ok()) return cg.status();
  t->cgroup_.emplace(*std::move(cg));
  t->instance_ = UniqueInstanceName();
  agent::DatapathOptions opts{.bpffs_root = t->bpffs_root_,
                              .instance = t->instance_,
                              .cgroup_path = t->cgroup_->path(),
                              .sizes = sizes,
                              .short_circuit = short_circuit};
  absl::StatusOr<std::unique_ptr<agent::Datapath>> dp = agent::Datapath::Start(opts);
  if (!dp.ok()) return dp.status();
  t->datapath_ = *std::move(dp);
  absl::StatusOr<agent::MapSync> sync =
      agent::MapSync::Recover(agent::ServiceMapsOf(t->datapath_->maps()), table_size);
  if (!sync.ok()) return sync.status();
  t->sync_.emplace(*std::move(sync));
  if (absl::Status s = t->cgroup_->Join(); !s.ok()) return s;
  return t;
}

TestDatapath::~TestDatapath() {
  if (cgroup_) (void)cgroup_->Leave();
  sync_.reset();
  datapath_.reset();
  if (!instance_.empty()) (void)agent::CleanupInstance(bpffs_root_, instance_);
  cgroup_.reset();
}

agent::SyncReport TestDatapath::Apply(const model::DesiredState& state) {
  return sync_->Apply(state);
}

uint64_t TestDatapath::Counter(int index) {
  absl::StatusOr<std::vector<uint64_t>> c = datapath_->ReadCounters();
  return c.ok() ? (*c)[static_cast<size_t>(index)] : ~0ULL;
}

}  // namespace sockmesh::testing
