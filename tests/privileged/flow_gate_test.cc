// SPDX-License-Identifier: Apache-2.0
// The egress check records which local workload opens a flow (sm_flow_identity_v1) only while a
// local workload is selected by a policy (sm_flow_gate_v1, set by PolicySync): without one, a
// workload's connection leaves no record; with one, the destination still sees the client's
// identity and a DENY for that identity drops the SYN. The server's address is not the endpoint's
// policy address, so only the destination side decides. Addresses 127.0.43.0/24.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "sockmesh/abi.h"
#include "sockmesh/consts.h"
#include "tests/support/policy_builder.h"
#include "tests/support/scoped_cgroup.h"
#include "tests/support/test_datapath.h"
#include "userspace/agent/abi_conversion.h"
#include "userspace/agent/cgroup.h"
#include "userspace/agent/policy_sync.h"
#include "userspace/agent/workload_cgroup.h"
#include "userspace/bpf/policy_decisions.h"
#include "userspace/sys/unique_fd.h"

namespace sockmesh::testing {
namespace {

constexpr char kServerIp[] = "127.0.43.1";
constexpr char kPolicyIp[] = "127.0.43.2";  // payment's endpoint address; never dialed
constexpr uint32_t kClientId = 4300;
constexpr uint32_t kPaymentId = 4301;
constexpr uint32_t kPaymentEndpoint = 1;
constexpr uint32_t kDenyPolicy = 2;

sockaddr_in Addr(const char* ip, uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  ::inet_pton(AF_INET, ip, &a.sin_addr);
  return a;
}

// Whether a TCP connect to ip:port completes within 500 ms.
bool Connects(const char* ip, uint16_t port) {
  sys::UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  sockaddr_in a = Addr(ip, port);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0) return true;
  if (errno != EINPROGRESS) return false;
  pollfd p{.fd = fd.get(), .events = POLLOUT, .revents = 0};
  if (::poll(&p, 1, 500) != 1) return false;
  int err = 0;
  socklen_t len = sizeof(err);
  ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
  return err == 0;
}

class FlowGateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dp = TestDatapath::Create();
    ASSERT_TRUE(dp.ok()) << dp.status();
    dp_ = *std::move(dp);
    mesh_ = dp_->cgroup_path();
    for (const char* name : {"client", "payment"}) {
      std::string path = agent::WorkloadCgroupPath(mesh_, {"shop", name});
      ASSERT_TRUE(agent::EnsureCgroup(path).ok()) << path;
      created_.insert(created_.begin(), path);
    }
    created_.push_back(mesh_ + "/shop");
    SetIdentity("client", kClientId);
    SetIdentity("payment", kPaymentId);
    agent::DatapathMaps& m = dp_->datapath().maps();
    auto sync = agent::PolicySync::Recover(agent::PolicyMaps{.rows = &m.policy_rows,
                                                             .ips = &m.ip_policy_endpoint,
                                                             .cgroups = &m.cgroup_policy_endpoint,
                                                             .flow_gate = &m.flow_gate});
    ASSERT_TRUE(sync.ok()) << sync.status();
    sync_.emplace(*std::move(sync));

    Enter("payment");
    server_ = sys::UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a = Addr(kServerIp, 0);
    ASSERT_EQ(::bind(server_.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0)
        << std::strerror(errno);
    ASSERT_EQ(::listen(server_.get(), 64), 0);
    socklen_t len = sizeof(a);
    ASSERT_EQ(::getsockname(server_.get(), reinterpret_cast<sockaddr*>(&a), &len), 0);
    port_ = ntohs(a.sin_port);
    Enter("client");
  }

  void TearDown() override {
    server_ = sys::UniqueFd();
    if (dp_) (void)agent::JoinCgroup(mesh_, ::getpid());
    for (const std::string& path : created_) ::rmdir(path.c_str());
    sync_.reset();
    dp_.reset();
  }

  void Enter(const std::string& workload) {
    ASSERT_TRUE(
        agent::JoinCgroup(agent::WorkloadCgroupPath(mesh_, {"shop", workload}), ::getpid()).ok());
  }
  void SetIdentity(const std::string& workload, uint32_t identity) {
    auto id = agent::CgroupId(agent::WorkloadCgroupPath(mesh_, {"shop", workload}));
    ASSERT_TRUE(id.ok()) << id.status();
    ASSERT_TRUE(dp_->datapath()
                    .maps()
                    .cgroup_identity.Update(*id, agent::ToAbiIdentity(identity, true))
                    .ok());
  }
  void Apply(const v1::CompiledPolicy& policy) {
    auto local = agent::ListWorkloadCgroups(mesh_);
    ASSERT_TRUE(local.ok()) << local.status();
    auto r = sync_->Apply(policy, *local);
    ASSERT_TRUE(r.ok()) << r.status();
  }
  uint32_t Gate() {
    auto v = dp_->datapath().maps().flow_gate.Lookup(0);
    EXPECT_TRUE(v.ok()) << v.status();
    return v.ok() ? *v : 99;
  }
  // Entries in sm_flow_identity_v1, through its pin.
  int RecordedFlows() {
    sys::UniqueFd map(bpf_obj_get((dp_->datapath().maps_dir() + "/sm_flow_identity_v1").c_str()));
    EXPECT_GE(map.get(), 0) << std::strerror(errno);
    sm_flow_key key{}, next{};
    int n = 0;
    const void* prev = nullptr;
    while (bpf_map_get_next_key(map.get(), prev, &next) == 0) {
      ++n;
      key = next;
      prev = &key;
    }
    return n;
  }
  uint64_t DeniedAtDestination() {
    auto d = bpf::ReadPolicyDecisions(dp_->datapath().maps().policy_decisions_fd);
    EXPECT_TRUE(d.ok()) << d.status();
    sm_policy_decision_key k{};
    k.endpoint_id = kPaymentEndpoint;
    k.source_identity = kClientId;
    k.policy_id = kDenyPolicy;
    k.verdict = SM_POLICY_DENY;
    k.point = SM_POLICY_AT_DESTINATION;
    return d.ok() ? bpf::DecisionCount(*d, k) : 0;
  }

  std::unique_ptr<TestDatapath> dp_;
  std::string mesh_;
  std::vector<std::string> created_;  // children first
  std::optional<agent::PolicySync> sync_;
  sys::UniqueFd server_;
  uint16_t port_ = 0;
};

TEST_F(FlowGateTest, FlowsAreRecordedOnlyWhileALocalWorkloadIsSelectedByAPolicy) {
  EXPECT_EQ(Gate(), static_cast<uint32_t>(SM_FLOW_GATE_SKIP));
  const int before = RecordedFlows();
  EXPECT_TRUE(Connects(kServerIp, port_));
  EXPECT_EQ(RecordedFlows(), before) << "no policy selects a local workload: nothing recorded";

  Apply(CompiledPolicyBuilder()
            .Policy(kDenyPolicy, "shop", "deny-client", v1::POLICY_ACTION_DENY)
            .Set(1, /*has_allow=*/false)
            .Row(kClientId, kAnyPort, {.deny = kDenyPolicy})
            .Endpoint(kPaymentEndpoint, "shop", "payment", {kPolicyIp}, 1)
            .Build());
  EXPECT_EQ(Gate(), static_cast<uint32_t>(SM_FLOW_GATE_RECORD));
  // The client's SYN is recorded as the client's, so payment's ingress matches the DENY row.
  EXPECT_FALSE(Connects(kServerIp, port_));
  EXPECT_GT(RecordedFlows(), before);
  EXPECT_GE(DeniedAtDestination(), 1u);

  Apply(CompiledPolicyBuilder().Build());  // no policy left
  EXPECT_EQ(Gate(), static_cast<uint32_t>(SM_FLOW_GATE_SKIP));
  EXPECT_TRUE(Connects(kServerIp, port_));
}

}  // namespace
}  // namespace sockmesh::testing
