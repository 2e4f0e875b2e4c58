// SPDX-License-Identifier: Apache-2.0
// Authorization policy through real sockets and the real BPF programs: hand-built CompiledPolicy
// protos go through PolicySync into a test datapath on a throwaway cgroup, with workload cgroups
// <mesh>/shop/{client,payment,ledger} below it. A socket belongs to the cgroup the process was in
// when it created the socket, and connect() is decided for the cgroup the process is in, so the
// test moves itself between workload cgroups to play server and client.
//
// Every row of Istio's evaluation order, and the bypass attempts (backend IP dialed directly,
// ::1 to a dual-stack server, UDP, a process outside the mesh, a remote node's address, IPv6
// extension headers before TCP/UDP), each with the decision counter that must move. Addresses:
// payment listens on 127.0.40.1 (its endpoint address), the service VIP is 127.10.40.1; the remote
// node is 10.123.0.11 in the multi-node harness's namespaces.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "sockmesh/consts.h"
#include "tests/support/model_builders.h"
#include "tests/support/multi_node.h"
#include "tests/support/policy_builder.h"
#include "tests/support/scoped_cgroup.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_datapath.h"
#include "userspace/agent/abi_conversion.h"
#include "userspace/agent/cgroup.h"
#include "userspace/agent/policy_sync.h"
#include "userspace/agent/workload_cgroup.h"
#include "userspace/agent/workload_status_file.h"
#include "userspace/bpf/policy_decisions.h"
#include "userspace/ctl/policy_monitor.h"
#include "userspace/sys/unique_fd.h"

namespace sockmesh::testing {
namespace {

namespace fs = std::filesystem;

constexpr char kPaymentIp[] = "127.0.40.1";
constexpr char kVip[] = "127.10.40.1";
constexpr uint16_t kVipPort = 7040;
constexpr uint32_t kClientId = 300;
constexpr uint32_t kPaymentId = 400;
constexpr uint32_t kRemoteId = 500;
constexpr uint32_t kPaymentEndpoint = 1;
// How long a connect to a destination that drops the SYN is given before it counts as dropped.
constexpr int kDropTimeoutMs = 700;

// Outcome of one connect().
enum class Dial { kConnected, kRefusedByPolicy, kTimedOut, kOtherError };

std::string DialName(Dial d) {
  switch (d) {
    case Dial::kConnected:
      return "connected";
    case Dial::kRefusedByPolicy:
      return "EPERM";
    case Dial::kTimedOut:
      return "timed out (dropped)";
    case Dial::kOtherError:
      return "other error";
  }
  return "?";
}

sockaddr_storage Addr(const std::string& ip, uint16_t port) {
  sockaddr_storage ss{};
  if (ip.find(':') == std::string::npos) {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    inet_pton(AF_INET, ip.c_str(), &a->sin_addr);
  } else {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    inet_pton(AF_INET6, ip.c_str(), &a->sin6_addr);
  }
  return ss;
}

socklen_t AddrLen(const sockaddr_storage& ss) {
  return ss.ss_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
}

// An IPv6 Destination Options or Hop-by-Hop header with one PadN option (8 bytes, the smallest);
// the kernel fills in the next-header byte. Packets that carry one have their transport header
// 8 bytes further than a fixed-size IPv6 header.
constexpr uint8_t kPadNOptionHeader[8] = {0, 0, 1, 4, 0, 0, 0, 0};

// Non-blocking connect with a deadline: EPERM comes back at once from the connect hook; a SYN
// dropped at the destination leaves the socket in SYN_SENT until the deadline. `ipv6_ext_header`
// (IPV6_DSTOPTS or IPV6_HOPOPTS; 0 for none) puts that extension header on every segment.
Dial TryConnect(const std::string& ip, uint16_t port, int timeout_ms = kDropTimeoutMs,
                int ipv6_ext_header = 0) {
  sockaddr_storage ss = Addr(ip, port);
  sys::UniqueFd fd(::socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return Dial::kOtherError;
  if (ipv6_ext_header != 0 && ::setsockopt(fd.get(), IPPROTO_IPV6, ipv6_ext_header,
                                           kPadNOptionHeader, sizeof(kPadNOptionHeader)) != 0) {
    return Dial::kOtherError;
  }
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&ss), AddrLen(ss)) == 0) {
    return Dial::kConnected;
  }
  if (errno == EPERM) return Dial::kRefusedByPolicy;
  if (errno != EINPROGRESS) return Dial::kOtherError;
  pollfd p{.fd = fd.get(), .events = POLLOUT, .revents = 0};
  if (::poll(&p, 1, timeout_ms) == 0) return Dial::kTimedOut;
  int err = 0;
  socklen_t len = sizeof(err);
  ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
  return err == 0 ? Dial::kConnected : Dial::kOtherError;
}

// A listening TCP socket on an ephemeral port (IPv6 "::" is dual-stack), or a bound UDP socket.
struct Server {
  sys::UniqueFd fd;
  uint16_t port = 0;
};

Server Listen(const std::string& ip, int type) {
  sockaddr_storage ss = Addr(ip, 0);
  Server s{sys::UniqueFd(::socket(ss.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)), 0};
  int zero = 0;
  if (ss.ss_family == AF_INET6) ::setsockopt(s.fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &zero, 4);
  EXPECT_EQ(::bind(s.fd.get(), reinterpret_cast<sockaddr*>(&ss), AddrLen(ss)), 0)
      << ip << ": " << std::strerror(errno);
  if (type == SOCK_STREAM) {
    EXPECT_EQ(::listen(s.fd.get(), 1024), 0);
  }
  sockaddr_storage bound{};
  socklen_t len = sizeof(bound);
  ::getsockname(s.fd.get(), reinterpret_cast<sockaddr*>(&bound), &len);
  s.port = ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);  // same offset for IPv6
  return s;
}

// Drains the accept queue so a long test never fills the backlog.
void AcceptAll(const Server& s) {
  while (true) {
    int c = ::accept4(s.fd.get(), nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) return;
    ::close(c);
  }
}

// Sends one datagram; returns 0 or the errno of sendto().
int SendTo(const std::string& ip, uint16_t port) {
  sockaddr_storage ss = Addr(ip, port);
  sys::UniqueFd fd(::socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  const char msg[] = "hello";
  if (::sendto(fd.get(), msg, sizeof(msg), 0, reinterpret_cast<sockaddr*>(&ss), AddrLen(ss)) < 0) {
    return errno;
  }
  return 0;
}

// Sends one IPv6 datagram carrying a Destination Options header (an IPV6_DSTOPTS control
// message); returns 0 or the errno of sendmsg().
int SendToWithDestinationOptions(const std::string& ip, uint16_t port) {
  sockaddr_storage ss = Addr(ip, port);
  sys::UniqueFd fd(::socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  char msg[] = "hello";
  iovec iov{.iov_base = msg, .iov_len = sizeof(msg)};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(kPadNOptionHeader))] = {};
  msghdr mh{};
  mh.msg_name = &ss;
  mh.msg_namelen = AddrLen(ss);
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = control;
  mh.msg_controllen = sizeof(control);
  cmsghdr* c = CMSG_FIRSTHDR(&mh);
  c->cmsg_level = IPPROTO_IPV6;
  c->cmsg_type = IPV6_DSTOPTS;
  c->cmsg_len = CMSG_LEN(sizeof(kPadNOptionHeader));
  std::memcpy(CMSG_DATA(c), kPadNOptionHeader, sizeof(kPadNOptionHeader));
  return ::sendmsg(fd.get(), &mh, 0) < 0 ? errno : 0;
}

// Datagrams waiting on `s` after a short wait.
int Received(const Server& s) {
  int n = 0;
  pollfd p{.fd = s.fd.get(), .events = POLLIN, .revents = 0};
  while (::poll(&p, 1, 200) > 0) {
    char buf[64];
    if (::recv(s.fd.get(), buf, sizeof(buf), 0) < 0) break;
    ++n;
  }
  return n;
}

sm_policy_decision_key Decision(uint32_t source, uint32_t policy, uint8_t verdict, uint8_t point) {
  sm_policy_decision_key k{};
  k.endpoint_id = kPaymentEndpoint;
  k.source_identity = source;
  k.policy_id = policy;
  k.verdict = verdict;
  k.point = point;
  return k;
}

class PolicyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    home_ = CurrentCgroup();
    absl::StatusOr<std::unique_ptr<TestDatapath>> dp = TestDatapath::Create();
    ASSERT_TRUE(dp.ok()) << dp.status();
    dp_ = *std::move(dp);
    mesh_ = dp_->cgroup_path();
    for (const char* name : {"client", "payment", "ledger"}) {
      std::string path = agent::WorkloadCgroupPath(mesh_, {"shop", name});
      ASSERT_TRUE(agent::EnsureCgroup(path).ok()) << path;
      created_.push_back(path);
    }
    created_.push_back(mesh_ + "/shop");
    agent::DatapathMaps& m = dp_->datapath().maps();
    absl::StatusOr<agent::PolicySync> sync =
        agent::PolicySync::Recover(agent::PolicyMaps{.rows = &m.policy_rows,
                                                     .ips = &m.ip_policy_endpoint,
                                                     .cgroups = &m.cgroup_policy_endpoint});
    ASSERT_TRUE(sync.ok()) << sync.status();
    sync_.emplace(*std::move(sync));
    SetIdentity("client", kClientId);
    SetIdentity("payment", kPaymentId);

    // payment's servers, created from its cgroup.
    Enter("payment");
    tcp_ = Listen(kPaymentIp, SOCK_STREAM);
    dual_ = Listen("::", SOCK_STREAM);
    udp_ = Listen(kPaymentIp, SOCK_DGRAM);
    udp_dual_ = Listen("::", SOCK_DGRAM);
    Enter("client");
  }

  void TearDown() override {
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
    absl::StatusOr<uint64_t> id =
        agent::CgroupId(agent::WorkloadCgroupPath(mesh_, {"shop", workload}));
    ASSERT_TRUE(id.ok());
    ASSERT_TRUE(dp_->datapath()
                    .maps()
                    .cgroup_identity.Update(*id, agent::ToAbiIdentity(identity, true))
                    .ok());
  }
  // Applies `policy` with the workload cgroups as the agent finds them.
  void Apply(const v1::CompiledPolicy& policy) {
    absl::StatusOr<std::vector<agent::WorkloadCgroup>> local = agent::ListWorkloadCgroups(mesh_);
    ASSERT_TRUE(local.ok()) << local.status();
    absl::StatusOr<agent::PolicySyncReport> r = sync_->Apply(policy, *local);
    ASSERT_TRUE(r.ok()) << r.status();
  }
  // Runs `f` in a child process moved back to the test's original cgroup, outside the mesh, where
  // no connect or sendmsg hook runs; returns its result (an exit status below 256), or -1.
  int OutsideTheMesh(const std::function<int()>& f) {
    EXPECT_FALSE(home_.empty());
    pid_t child = ::fork();
    if (child < 0) return -1;
    if (child == 0) {
      if (!agent::JoinCgroup(home_, ::getpid()).ok()) ::_exit(255);
      ::_exit(f());
    }
    int status = 0;
    if (::waitpid(child, &status, 0) != child || !WIFEXITED(status)) return -1;
    return WEXITSTATUS(status);
  }
  Dial DialOutsideTheMesh(const std::string& ip, uint16_t port, int timeout_ms,
                          int ipv6_ext_header = 0) {
    int r = OutsideTheMesh(
        [&] { return static_cast<int>(TryConnect(ip, port, timeout_ms, ipv6_ext_header)); });
    return r < 0 || r > static_cast<int>(Dial::kOtherError) ? Dial::kOtherError
                                                            : static_cast<Dial>(r);
  }
  uint64_t Count(const sm_policy_decision_key& key) {
    auto d = bpf::ReadPolicyDecisions(dp_->datapath().maps().policy_decisions_fd);
    EXPECT_TRUE(d.ok()) << d.status();
    return d.ok() ? bpf::DecisionCount(*d, key) : 0;
  }

  // payment (set 1) selected by the policy rows given; only payment is an endpoint.
  static CompiledPolicyBuilder PaymentPolicy(bool has_allow) {
    CompiledPolicyBuilder b;
    b.Policy(1, "shop", "allow", v1::POLICY_ACTION_ALLOW)
        .Policy(2, "shop", "deny", v1::POLICY_ACTION_DENY)
        .Policy(3, "shop", "audit", v1::POLICY_ACTION_AUDIT)
        .Set(1, has_allow);
    return b;
  }
  static v1::CompiledPolicy WithPayment(CompiledPolicyBuilder b) {
    return b.Endpoint(kPaymentEndpoint, "shop", "payment", {kPaymentIp}, 1).Build();
  }

  std::string home_;
  std::string mesh_;
  std::unique_ptr<TestDatapath> dp_;
  std::vector<std::string> created_;
  std::optional<agent::PolicySync> sync_;
  Server tcp_, dual_, udp_, udp_dual_;
};

TEST_F(PolicyTest, DenyMatchRefusesConnectWithEperm) {
  Apply(WithPayment(PaymentPolicy(false).Row(kClientId, tcp_.port, {.deny = 2})));
  const uint64_t before = dp_->Counter(SM_CNT_POLICY_DENIED_CLIENT);
  absl::Time start = absl::Now();
  EXPECT_EQ(DialName(TryConnect(kPaymentIp, tcp_.port)), DialName(Dial::kRefusedByPolicy));
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(200)) << "a denial must not hang";
  EXPECT_EQ(dp_->Counter(SM_CNT_POLICY_DENIED_CLIENT), before + 1);
  EXPECT_EQ(Count(Decision(kClientId, 2, SM_POLICY_DENY, SM_POLICY_AT_CLIENT)), 1u);
}

TEST_F(PolicyTest, NotSelectedByAnAllowPolicyConnects) {
  // Only a DENY for another source selects payment: the default is allow.
  Apply(WithPayment(PaymentPolicy(false).Row(999, kAnyPort, {.deny = 2})));
  EXPECT_EQ(DialName(TryConnect(kPaymentIp, tcp_.port)), DialName(Dial::kConnected));
  EXPECT_EQ(Count(Decision(kClientId, 0, SM_POLICY_ALLOW, SM_POLICY_AT_CLIENT)), 1u);
  EXPECT_EQ(Count(Decision(kClientId, 0, SM_POLICY_ALLOW, SM_POLICY_AT_DESTINATION)), 1u);
}

TEST_F(PolicyTest, AllowMatchConnectsAndAllowWithoutMatchIsRefused) {
  Apply(WithPayment(PaymentPolicy(true).Row(kClientId, tcp_.port, {.allow = 1})));
  EXPECT_EQ(DialName(TryConnect(kPaymentIp, tcp_.port)), DialName(Dial::kConnected));
  EXPECT_EQ(Count(Decision(kClientId, 1, SM_POLICY_ALLOW, SM_POLICY_AT_CLIENT)), 1u);
  // The destination knows the client by the flow its egress recorded.
  EXPECT_EQ(Count(Decision(kClientId, 1, SM_POLICY_ALLOW, SM_POLICY_AT_DESTINATION)), 1u);

  Enter("ledger");  // no identity: the world, which no ALLOW matches
  EXPECT_EQ(DialName(TryConnect(kPaymentIp, tcp_.port)), DialName(Dial::kRefusedByPolicy));
  EXPECT_EQ(Count(Decision(0, 0, SM_POLICY_DENY_NO_MATCH, SM_POLICY_AT_CLIENT)), 1u);
}

TEST_F(PolicyTest, AuditConnectsAndIsCounted) {
  Apply(WithPayment(PaymentPolicy(false).Row(kAnySource, tcp_.port, {.audit = 3})));
  EXPECT_EQ(DialName(TryConnect(kPaymentIp, tcp_.port)), DialName(Dial::kConnected));
  EXPECT_EQ(Count(Decision(kClientId, 3, SM_POLICY_AUDIT, SM_POLICY_AT_CLIENT)), 1u);
  EXPECT_EQ(Count(Decision(kClientId, 3, SM_POLICY_AUDIT, SM_POLICY_AT_DESTINATION)), 1u);
  EXPECT_EQ(Count(Decision(kClientId, 0, SM_POLICY_ALLOW, SM_POLICY_AT_CLIENT)), 1u);
}

TEST_F(PolicyTest, EmptyAllowPolicyDeniesEverything) {
  Apply(WithPayment(PaymentPolicy(true)));  // spec: {} -> a set with has_allow and no rows
  EXPECT_EQ(DialName(TryConnect(kPaymentIp, tcp_.port)), DialName(Dial::kRefusedByPolicy));
  EXPECT_EQ(SendTo(kPaymentIp, udp_.port), EPERM);
  EXPECT_EQ(Count(Decision(kClientId, 0, SM_POLICY_DENY_NO_MATCH, SM_POLICY_AT_CLIENT)), 2u);
}

TEST_F(PolicyTest, ServiceVipAndBackendIpDialedDirectlyAreBothDecided) {
  model::DesiredState state;
  AddService(state, MakeService(kVip, kVipPort, model::Protocol::kTcp,
                                {MakeBackend(kPaymentIp, tcp_.port)}));
  ASSERT_EQ(dp_->Apply(state).failed, 0u);
  Apply(WithPayment(PaymentPolicy(false).Row(kClientId, kAnyPort, {.deny = 2})));
  EXPECT_EQ(DialName(TryConnect(kVip, kVipPort)), DialName(Dial::kRefusedByPolicy));
  EXPECT_EQ(DialName(TryConnect(kPaymentIp, tcp_.port)), DialName(Dial::kRefusedByPolicy));
  EXPECT_EQ(Count(Decision(kClientId, 2, SM_POLICY_DENY, SM_POLICY_AT_CLIENT)), 2u);
}

TEST_F(PolicyTest, OtherAddressesAndIpv6AreDecidedAtTheDestination) {
  Apply(WithPayment(PaymentPolicy(false).Row(kClientId, kAnyPort, {.deny = 2})));
  const uint64_t before = dp_->Counter(SM_CNT_POLICY_DROPPED_DEST);
  // ::1 and 127.0.0.1 are not payment's endpoint address, so connect() lets them through; the
  // dual-stack server's ingress knows the socket is payment's and drops the SYN.
  EXPECT_EQ(DialName(TryConnect("::1", dual_.port)), DialName(Dial::kTimedOut));
  EXPECT_EQ(DialName(TryConnect("127.0.0.1", dual_.port)), DialName(Dial::kTimedOut));
  EXPECT_GE(dp_->Counter(SM_CNT_POLICY_DROPPED_DEST), before + 2);
  EXPECT_GE(Count(Decision(kClientId, 2, SM_POLICY_DENY, SM_POLICY_AT_DESTINATION)), 2u);
}

TEST_F(PolicyTest, UdpIsDecidedAtSendAndAtTheDestination) {
  Apply(WithPayment(PaymentPolicy(false).Row(kClientId, kAnyPort, {.deny = 2})));
  EXPECT_EQ(SendTo(kPaymentIp, udp_.port), EPERM);
  EXPECT_EQ(SendTo("::1", udp_dual_.port), 0);  // not the endpoint address: sent ...
  EXPECT_EQ(Received(udp_dual_), 0);            // ... and dropped at payment's socket
  EXPECT_EQ(Count(Decision(kClientId, 2, SM_POLICY_DENY, SM_POLICY_AT_CLIENT)), 1u);
  EXPECT_EQ(Count(Decision(kClientId, 2, SM_POLICY_DENY, SM_POLICY_AT_DESTINATION)), 1u);

  // Allowed: datagrams arrive, and connected UDP sockets are decided at connect().
  Apply(WithPayment(PaymentPolicy(true).Row(kClientId, kAnyPort, {.allow = 1})));
  EXPECT_EQ(SendTo(kPaymentIp, udp_.port), 0);
  EXPECT_EQ(SendTo("::1", udp_dual_.port), 0);
  EXPECT_EQ(Received(udp_), 1);
  EXPECT_EQ(Received(udp_dual_), 1);
  Enter("ledger");
  sockaddr_storage ss = Addr(kPaymentIp, udp_.port);
  sys::UniqueFd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  EXPECT_EQ(::connect(fd.get(), reinterpret_cast<sockaddr*>(&ss), AddrLen(ss)), -1);
  EXPECT_EQ(errno, EPERM);
}

TEST_F(PolicyTest, ProcessOutsideTheMeshIsDroppedAtTheDestination) {
  ASSERT_FALSE(home_.empty());
  Apply(WithPayment(PaymentPolicy(true).Row(kClientId, kAnyPort, {.allow = 1})));
  const uint64_t before = dp_->Counter(SM_CNT_POLICY_DROPPED_DEST);
  // Outside the mesh cgroup no connect hook runs: only the destination can refuse.
  EXPECT_EQ(DialName(DialOutsideTheMesh(kPaymentIp, tcp_.port, kDropTimeoutMs)),
            DialName(Dial::kTimedOut));
  EXPECT_GE(dp_->Counter(SM_CNT_POLICY_DROPPED_DEST), before + 1);
  EXPECT_GE(Count(Decision(0, 0, SM_POLICY_DENY_NO_MATCH, SM_POLICY_AT_DESTINATION)), 1u);
}

// A Destination Options or Hop-by-Hop header puts the TCP header 8 bytes further: the destination
// must walk the extension headers to the ports (it used to give up on them and let the SYN pass).
// The allowed server shows that the header itself is not what blocks.
TEST_F(PolicyTest, Ipv6ExtensionHeadersFromOutsideTheMeshAreDecidedAtTheDestination) {
  Enter("payment");
  Server allowed = Listen("::", SOCK_STREAM);
  Enter("client");
  Apply(WithPayment(PaymentPolicy(false).Row(kAnySource, dual_.port, {.deny = 2})));
  const uint64_t before = dp_->Counter(SM_CNT_POLICY_DROPPED_DEST);
  for (int header : {IPV6_DSTOPTS, IPV6_HOPOPTS}) {
    SCOPED_TRACE(header == IPV6_DSTOPTS ? "IPV6_DSTOPTS" : "IPV6_HOPOPTS");
    EXPECT_EQ(DialName(DialOutsideTheMesh("::1", dual_.port, kDropTimeoutMs, header)),
              DialName(Dial::kTimedOut));
    EXPECT_EQ(DialName(DialOutsideTheMesh("::1", allowed.port, 3000, header)),
              DialName(Dial::kConnected));
  }
  EXPECT_GE(dp_->Counter(SM_CNT_POLICY_DROPPED_DEST), before + 2);
  EXPECT_GE(Count(Decision(0, 2, SM_POLICY_DENY, SM_POLICY_AT_DESTINATION)), 2u);
  EXPECT_EQ(Count(Decision(0, 0, SM_POLICY_ALLOW, SM_POLICY_AT_DESTINATION)), 2u);
}

// A local client's SYN with an extension header still carries its identity: the egress side
// records the flow behind the header, so a DENY for that client (not for the world) matches.
TEST_F(PolicyTest, Ipv6ExtensionHeadersKeepTheLocalClientsIdentity) {
  Apply(WithPayment(PaymentPolicy(false).Row(kClientId, dual_.port, {.deny = 2})));
  EXPECT_EQ(DialName(TryConnect("::1", dual_.port, kDropTimeoutMs, IPV6_DSTOPTS)),
            DialName(Dial::kTimedOut));
  EXPECT_GE(Count(Decision(kClientId, 2, SM_POLICY_DENY, SM_POLICY_AT_DESTINATION)), 1u);
}

TEST_F(PolicyTest, UdpWithIpv6DestinationOptionsIsDecidedAtTheDestination) {
  Apply(WithPayment(PaymentPolicy(false).Row(kAnySource, udp_dual_.port, {.deny = 2})));
  auto send = [&] { return SendToWithDestinationOptions("::1", udp_dual_.port); };
  EXPECT_EQ(OutsideTheMesh(send), 0);
  EXPECT_EQ(Received(udp_dual_), 0);
  EXPECT_EQ(Count(Decision(0, 2, SM_POLICY_DENY, SM_POLICY_AT_DESTINATION)), 1u);

  // Denied only for another source: the same datagram is delivered.
  Apply(WithPayment(PaymentPolicy(false).Row(kClientId, kAnyPort, {.deny = 2})));
  EXPECT_EQ(OutsideTheMesh(send), 0);
  EXPECT_EQ(Received(udp_dual_), 1);
  EXPECT_EQ(Count(Decision(0, 0, SM_POLICY_ALLOW, SM_POLICY_AT_DESTINATION)), 1u);
}

TEST_F(PolicyTest, RemoteNodeSourceIsKnownByItsAddress) {
  MultiNodeOptions options;
  options.nodes = 2;
  absl::StatusOr<std::unique_ptr<MultiNode>> net = MultiNode::Create(options);
  ASSERT_TRUE(net.ok()) << net.status();
  MultiNode::Node& dest = (*net)->node(0);
  MultiNode::Node& remote = (*net)->node(1);
  ASSERT_TRUE(dp_->datapath()
                  .maps()
                  .ip_identity
                  .Update(agent::ToIpIdentityKey(*model::IpAddress::Parse(remote.ip)),
                          agent::ToAbiIdentity(kRemoteId, false))
                  .ok());
  Server allowed, denied;
  Enter("payment");
  ASSERT_TRUE(MultiNode::InNetns(dest.netns_fd.get(), [&] {
                allowed = Listen(dest.ip, SOCK_STREAM);
                denied = Listen(dest.ip, SOCK_STREAM);
              }).ok());
  CompiledPolicyBuilder b = PaymentPolicy(true);
  b.Row(kRemoteId, allowed.port, {.allow = 1});
  b.Endpoint(kPaymentEndpoint, "shop", "payment", {dest.ip}, 1);
  Apply(b.Build());
  // The "remote" client runs outside this node's mesh cgroup (another node's hooks are not ours),
  // so the destination knows it only by its address in sm_ip_identity_v1.
  ASSERT_FALSE(home_.empty());
  ASSERT_TRUE(agent::JoinCgroup(home_, ::getpid()).ok());
  Dial ok = Dial::kOtherError, refused = Dial::kOtherError;
  ASSERT_TRUE(MultiNode::InNetns(remote.netns_fd.get(), [&] {
                ok = TryConnect(dest.ip, allowed.port, 3000);
                refused = TryConnect(dest.ip, denied.port);
              }).ok());
  ASSERT_TRUE(agent::JoinCgroup(mesh_, ::getpid()).ok());
  EXPECT_EQ(DialName(ok), DialName(Dial::kConnected));
  EXPECT_EQ(DialName(refused), DialName(Dial::kTimedOut));
  EXPECT_EQ(Count(Decision(kRemoteId, 1, SM_POLICY_ALLOW, SM_POLICY_AT_DESTINATION)), 1u);
  EXPECT_GE(Count(Decision(kRemoteId, 0, SM_POLICY_DENY_NO_MATCH, SM_POLICY_AT_DESTINATION)), 1u);
}

TEST_F(PolicyTest, MonitorShowsDenialsOfBothSidesWithNames) {
  v1::CompiledPolicy policy =
      WithPayment(PaymentPolicy(false).Row(kClientId, kAnyPort, {.deny = 2}));
  Apply(policy);
  TempDir run_dir("policy-monitor");
  model::WorkloadState workloads;
  workloads.identities["cluster.local/ns/shop/sa/client"] = kClientId;
  model::Workload client;
  client.identity = kClientId;
  client.namespace_name = "shop";
  client.name = "client";
  client.service_account = "client";
  workloads.workloads[{"shop", "client"}] = client;
  ASSERT_TRUE(agent::WriteWorkloadStatus(agent::WorkloadStatusPath(run_dir.path(), dp_->instance()),
                                         workloads, policy)
                  .ok());
  EXPECT_EQ(DialName(TryConnect(kPaymentIp, tcp_.port)), DialName(Dial::kRefusedByPolicy));
  EXPECT_EQ(DialName(TryConnect("::1", dual_.port)), DialName(Dial::kTimedOut));

  std::vector<std::string> lines;
  ctl::MonitorOptions options{.instance = dp_->instance(),
                              .run_dir = run_dir.path(),
                              .count = 2,
                              .timeout = absl::Seconds(5),
                              .json = false};
  absl::StatusOr<int> printed =
      ctl::RunPolicyMonitor(options, [&](const std::string& l) { lines.push_back(l); });
  ASSERT_TRUE(printed.ok()) << printed.status();
  ASSERT_EQ(*printed, 2);
  EXPECT_TRUE(absl::StrContains(lines[0],
                                "DENY shop/client (identity 300, -) "
                                "-> shop/payment (127.0.40.1:"))
      << lines[0];
  EXPECT_TRUE(absl::StrContains(lines[0], "/tcp) policy=shop/deny side=client")) << lines[0];
  EXPECT_TRUE(absl::StrContains(lines[1], "(identity 300, [::1]:")) << lines[1];
  EXPECT_TRUE(absl::StrContains(lines[1], "side=destination")) << lines[1];

  // JSON, and the stream ends at the timeout when nothing more is denied.
  EXPECT_EQ(SendTo(kPaymentIp, udp_.port), EPERM);
  lines.clear();
  options.json = true;
  options.count = 0;
  options.timeout = absl::Milliseconds(500);
  printed = ctl::RunPolicyMonitor(options, [&](const std::string& l) { lines.push_back(l); });
  ASSERT_TRUE(printed.ok()) << printed.status();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_TRUE(absl::StrContains(lines[0], "\"protocol\":\"udp\"")) << lines[0];
  EXPECT_TRUE(absl::StrContains(lines[0], "\"side\":\"client\"")) << lines[0];
}

TEST_F(PolicyTest, PolicyReplacedUnderTrafficNeverRefusesAnAllowedConnection) {
  std::atomic<bool> stop{false};
  std::atomic<int> connected{0}, failed{0};
  Apply(WithPayment(PaymentPolicy(true).Row(kClientId, tcp_.port, {.allow = 1})));
  std::thread client([&] {
    while (!stop.load()) {
      if (TryConnect(kPaymentIp, tcp_.port, 2000) == Dial::kConnected) {
        ++connected;
      } else {
        ++failed;
      }
      AcceptAll(tcp_);
    }
  });
  // Each version allows the client through a different row and policy id, with other sources'
  // rows around it, so every swap moves payment to a new kernel set.
  for (int version = 0; version < 40; ++version) {
    CompiledPolicyBuilder b;
    b.Policy(10 + version, "shop", "allow", v1::POLICY_ACTION_ALLOW).Set(1, true);
    for (uint32_t other = 1000; other < 1020; ++other)
      b.Row(other, tcp_.port, {.allow = 10u + version});
    if (version % 2) {
      b.Row(kClientId, kAnyPort, {.allow = 10u + version});
    } else {
      b.Row(kAnySource, tcp_.port, {.allow = 10u + version});
    }
    Apply(WithPayment(std::move(b)));
    absl::SleepFor(absl::Milliseconds(10));
  }
  stop = true;
  client.join();
  EXPECT_GT(connected.load(), 40);
  EXPECT_EQ(failed.load(), 0);
}

}  // namespace
}  // namespace sockmesh::testing
