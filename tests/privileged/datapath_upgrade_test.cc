// SPDX-License-Identifier: Apache-2.0
// An agent started over the pins of an older build: links of programs that this build no longer
// has (the four cgroup_skb programs that became one per direction) are detached and unpinned once
// their replacements run, and nothing is left attached twice.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sm_sock_lb.skel.h"
#include "tests/support/test_datapath.h"
#include "userspace/agent/bpffs.h"
#include "userspace/agent/cgroup.h"
#include "userspace/agent/datapath.h"

namespace sockmesh::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::UnorderedElementsAre;

struct SkelDeleter {
  void operator()(sm_sock_lb* skel) const { sm_sock_lb__destroy(skel); }
};
struct LinkDeleter {
  void operator()(bpf_link* link) const { bpf_link__destroy(link); }
};

// How many programs run at `type` on the cgroup (its own attachments only).
uint32_t ProgramsAt(int cgroup_fd, bpf_attach_type type) {
  uint32_t ids[16];
  uint32_t count = 16;
  uint32_t flags = 0;
  if (bpf_prog_query(cgroup_fd, type, 0, &flags, ids, &count) != 0) {
    ADD_FAILURE() << "BPF_PROG_QUERY: " << std::strerror(errno);
    return 0;
  }
  return count;
}

std::set<std::string> PinnedLinks(const std::string& dir) {
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.insert(e.path().filename().string());
  return names;
}

class DatapathUpgradeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dp = TestDatapath::Create();
    ASSERT_TRUE(dp.ok()) << dp.status();
    dp_ = *std::move(dp);
    ASSERT_TRUE(dp_->cgroup().Leave().ok());
    links_dir_ = agent::MakePinLayout(dp_->bpffs_root(), dp_->instance()).links_dir;
    auto cgroup = agent::OpenCgroup(dp_->cgroup_path());
    ASSERT_TRUE(cgroup.ok()) << cgroup.status();
    cgroup_ = *std::move(cgroup);
  }

  // What the older build left: a pinned cgroup link per name, running a program of a separately
  // loaded object (the program does not matter, only the attachment and the pin).
  void PinOldLink(bpf_program* prog, const std::string& name) {
    std::unique_ptr<bpf_link, LinkDeleter> link(bpf_program__attach_cgroup(prog, cgroup_.get()));
    ASSERT_TRUE(link) << "attach " << name << ": " << std::strerror(errno);
    ASSERT_EQ(bpf_link__pin(link.get(), (links_dir_ + "/" + name).c_str()), 0) << name;
  }

  agent::DatapathOptions Restart() const {
    agent::DatapathOptions o;
    o.bpffs_root = dp_->bpffs_root();
    o.instance = dp_->instance();
    o.cgroup_path = dp_->cgroup_path();
    return o;
  }

  std::unique_ptr<TestDatapath> dp_;
  std::string links_dir_;
  sys::UniqueFd cgroup_;
};

TEST_F(DatapathUpgradeTest, OldCgroupSkbLinksAreReplacedByOneProgramPerDirection) {
  const std::set<std::string> current = PinnedLinks(links_dir_);
  ASSERT_TRUE(current.contains("sm_skb_egress")) << "this build's egress program";
  ASSERT_TRUE(current.contains("sm_skb_ingress")) << "this build's ingress program";
  EXPECT_EQ(ProgramsAt(cgroup_.get(), BPF_CGROUP_INET_EGRESS), 1u);
  EXPECT_EQ(ProgramsAt(cgroup_.get(), BPF_CGROUP_INET_INGRESS), 1u);

  std::unique_ptr<sm_sock_lb, SkelDeleter> old(sm_sock_lb__open_and_load());
  ASSERT_TRUE(old) << "load sm_sock_lb: " << std::strerror(errno);
  ASSERT_NO_FATAL_FAILURE(PinOldLink(old->progs.sm_skb_egress, "sm_pol_egress"));
  ASSERT_NO_FATAL_FAILURE(PinOldLink(old->progs.sm_skb_egress, "sm_req_egress"));
  ASSERT_NO_FATAL_FAILURE(PinOldLink(old->progs.sm_skb_ingress, "sm_pol_ingress"));
  ASSERT_NO_FATAL_FAILURE(PinOldLink(old->progs.sm_skb_ingress, "sm_req_ingress"));
  old.reset();  // the pins keep the old links attached
  ASSERT_EQ(ProgramsAt(cgroup_.get(), BPF_CGROUP_INET_EGRESS), 3u);
  ASSERT_EQ(ProgramsAt(cgroup_.get(), BPF_CGROUP_INET_INGRESS), 3u);

  auto upgraded = agent::Datapath::Start(Restart());
  ASSERT_TRUE(upgraded.ok()) << upgraded.status();
  const agent::AttachReport& r = (*upgraded)->report();
  EXPECT_THAT(r.removed, UnorderedElementsAre("sm_pol_egress", "sm_pol_ingress", "sm_req_egress",
                                              "sm_req_ingress"));
  EXPECT_TRUE(r.attached.empty()) << "every current program was adopted from its pin";
  EXPECT_EQ(r.adopted.size(), current.size());
  EXPECT_EQ(PinnedLinks(links_dir_), current);
  EXPECT_EQ(ProgramsAt(cgroup_.get(), BPF_CGROUP_INET_EGRESS), 1u);
  EXPECT_EQ(ProgramsAt(cgroup_.get(), BPF_CGROUP_INET_INGRESS), 1u);
  upgraded->reset();

  // The next start finds nothing stale.
  auto again = agent::Datapath::Start(Restart());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE((*again)->report().removed.empty());
  EXPECT_EQ((*again)->report().adopted.size(), current.size());
}

}  // namespace
}  // namespace sockmesh::testing
