// SPDX-License-Identifier: Apache-2.0
// The authorization-policy matrix end to end, as a user runs it: AuthorizationPolicy manifests in
// the directory sockmesh-control watches -> every node's real sockmesh-agent -> its kernel, with
// connections between workloads on two nodes of the multi-node harness
// (tests/support/multi_node.h).
//
// Workloads are Pods (identity cluster.local/ns/<ns>/sa/<sa>) with their own addresses on their
// node's eth0 (MultiNode::AddAddress), and processes in their node's workload cgroup
// <node cgroup>/<ns>/<name>, where the agent maps them:
//   node-0: shop/payment   10.123.0.100 (Pod IP), also fd00:123::100 (not in the Pod: a bypass)
//                          TCP [::]:7100 and UDP [::]:7101, dual-stack; the Service shop/payment,
//                          VIP 127.10.240.1:80 -> 10.123.0.100:7100
//           shop/frontend  10.123.0.102 (a client on the destination's node)
//   node-1: shop/client    10.123.0.110, fd00:123::110 (a client on a remote node)
//           other/intruder 10.123.0.111
// Clients bind their workload's address before dialing, as a pod's socket has its pod IP, so the
// destination node knows remote sources by address. Processes outside the mesh stay in the test's
// own cgroup and bind their node's address (10.123.0.1x), which is no workload's.
//
// One harness serves every row (SetUpTestSuite). Each row writes its policies as one file, waits
// until both agents ACKed the resulting version, then runs its probes; each probe states the
// outcome and exactly which sockmesh_policy_decisions_total series move on which node (every
// other series must stay). The first row has no policy: every probe connects and nothing is
// counted, which proves that each later refusal is the policy's doing.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "sockmesh/abi.h"
#include "tests/support/agent_process.h"
#include "tests/support/control_plane_status.h"
#include "tests/support/manifest_files.h"
#include "tests/support/metrics_scrape.h"
#include "tests/support/multi_node.h"
#include "tests/support/scoped_cgroup.h"
#include "tests/support/temp_dir.h"
#include "userspace/agent/cgroup.h"
#include "userspace/agent/workload_cgroup.h"
#include "userspace/bpf/typed_map.h"
#include "userspace/sys/unique_fd.h"

#if !defined(SOCKMESH_AGENT_BIN) || !defined(SOCKMESH_CONTROL_BIN) || !defined(SOCKMESH_CTL_BIN)
#error \
    "SOCKMESH_{AGENT,CONTROL,CTL}_BIN must name the binaries (set by tests/privileged/CMakeLists)"
#endif

namespace sockmesh::testing {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

constexpr char kAgentBin[] = SOCKMESH_AGENT_BIN;
constexpr char kControlBin[] = SOCKMESH_CONTROL_BIN;
constexpr char kCtlBin[] = SOCKMESH_CTL_BIN;
constexpr int kNodes = 2;
constexpr int kDest = 0;    // the node of shop/payment and shop/frontend
constexpr int kRemote = 1;  // the node of shop/client and other/intruder
// Each node's namespace is private, so fixed ports cannot collide with other tests.
constexpr uint16_t kTcpPort = 7100;
constexpr uint16_t kUdpPort = 7101;
constexpr uint16_t kMetricsPort = 9480;
constexpr char kVip[] = "127.10.240.1";
constexpr uint16_t kVipPort = 80;
constexpr char kPaymentIp[] = "10.123.0.100";
constexpr char kPaymentIp6[] = "fd00:123::100";
constexpr char kFrontendIp[] = "10.123.0.102";
constexpr char kClientIp[] = "10.123.0.110";
constexpr char kClientIp6[] = "fd00:123::110";
constexpr char kIntruderIp[] = "10.123.0.111";
constexpr char kPolicyFile[] = "policy.yaml";
// A SYN dropped at the destination is retransmitted after 1 s: waiting less sees exactly one
// decision per dial (the margin covers a slow exit of the probe on a loaded machine).
constexpr int kDropWaitMs = 600;
constexpr int kUdpWaitMs = 400;
// inotify + debounce + a push over the veths and the ACKs, with slack for a loaded machine.
constexpr absl::Duration kPropagateTimeout = absl::Seconds(15);

// Pods with their node and addresses, the Service in front of payment, and the namespaces.
constexpr char kWorkloadsYaml[] = R"(apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: Namespace
metadata: {name: other}
---
apiVersion: v1
kind: Pod
metadata: {name: payment, namespace: shop, labels: {app: payment}}
spec: {serviceAccountName: payment, nodeName: node-0}
status: {podIP: 10.123.0.100}
---
apiVersion: v1
kind: Pod
metadata: {name: frontend, namespace: shop, labels: {app: frontend}}
spec: {serviceAccountName: frontend, nodeName: node-0}
status: {podIP: 10.123.0.102}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: shop, labels: {app: client}}
spec: {serviceAccountName: client, nodeName: node-1}
status: {podIP: 10.123.0.110, podIPs: [{ip: 10.123.0.110}, {ip: "fd00:123::110"}]}
---
apiVersion: v1
kind: Pod
metadata: {name: intruder, namespace: other, labels: {app: intruder}}
spec: {serviceAccountName: intruder, nodeName: node-1}
status: {podIP: 10.123.0.111}
---
apiVersion: v1
kind: Service
metadata: {name: payment, namespace: shop}
spec:
  clusterIP: 127.10.240.1
  ports: [{name: tcp, port: 80, targetPort: 7100, protocol: TCP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: payment-1
  namespace: shop
  labels: {kubernetes.io/service-name: payment}
addressType: IPv4
ports: [{name: tcp, port: 7100, protocol: TCP}]
endpoints:
  - addresses: [10.123.0.100]
    conditions: {ready: true}
)";

struct LocalWorkload {
  int node;
  std::string ns;
  std::string name;
  std::vector<std::string> addresses;  // added to the node's eth0
};
const std::vector<LocalWorkload>& Workloads() {
  static const auto* w = new std::vector<LocalWorkload>{
      {kDest,
       "shop",
       "payment",
       {absl::StrCat(kPaymentIp, "/24"), absl::StrCat(kPaymentIp6, "/64")}},
      {kDest, "shop", "frontend", {absl::StrCat(kFrontendIp, "/24")}},
      {kRemote,
       "shop",
       "client",
       {absl::StrCat(kClientIp, "/24"), absl::StrCat(kClientIp6, "/64")}},
      {kRemote, "other", "intruder", {absl::StrCat(kIntruderIp, "/24")}},
  };
  return *w;
}

// ---- Probes --------------------------------------------------------------------------------

enum class Outcome { kConnected, kRefusedAtClient, kDroppedAtDestination, kOtherError };

std::string OutcomeName(Outcome o) {
  switch (o) {
    case Outcome::kConnected:
      return "connected";
    case Outcome::kRefusedAtClient:
      return "EPERM at the client";
    case Outcome::kDroppedAtDestination:
      return "dropped at the destination";
    case Outcome::kOtherError:
      return "other error";
  }
  return "?";
}

// One dial: from a process of `workload` ("ns/name"; "" = outside the mesh, in the test's own
// cgroup) on node `node`, bound to `source`, to dest:port over TCP (a handshake) or UDP (a
// datagram).
struct Probe {
  std::string what;
  int node;
  std::string workload_ns, workload_name;
  std::string source;
  std::string dest;
  uint16_t port;
  bool udp = false;
};

const Probe kClientToBackend{"shop/client (node-1) -> payment's IP",
                             kRemote,
                             "shop",
                             "client",
                             kClientIp,
                             kPaymentIp,
                             kTcpPort};
const Probe kClientToVip{"shop/client (node-1) -> the Service VIP",
                         kRemote,
                         "shop",
                         "client",
                         kClientIp,
                         kVip,
                         kVipPort};
const Probe kClientToIpv6{"shop/client (node-1) -> payment's IPv6 address (not in its Pod)",
                          kRemote,
                          "shop",
                          "client",
                          kClientIp6,
                          kPaymentIp6,
                          kTcpPort};
const Probe kClientUdp{"shop/client (node-1) -> payment's IP, UDP",
                       kRemote,
                       "shop",
                       "client",
                       kClientIp,
                       kPaymentIp,
                       kUdpPort,
                       true};
const Probe kClientUdpIpv6{"shop/client (node-1) -> payment's IPv6 address, UDP",
                           kRemote,
                           "shop",
                           "client",
                           kClientIp6,
                           kPaymentIp6,
                           kUdpPort,
                           true};
const Probe kIntruderToBackend{"other/intruder (node-1) -> payment's IP",
                               kRemote,
                               "other",
                               "intruder",
                               kIntruderIp,
                               kPaymentIp,
                               kTcpPort};
const Probe kFrontendToBackend{"shop/frontend (node-0) -> payment's IP",
                               kDest,
                               "shop",
                               "frontend",
                               kFrontendIp,
                               kPaymentIp,
                               kTcpPort};
const Probe kFrontendToLoopback6{
    "shop/frontend (node-0) -> [::1]", kDest, "shop", "frontend", "", "::1", kTcpPort};
const Probe kOutsideOnDestNode{"outside the mesh on node-0 -> payment's IP",
                               kDest,
                               "",
                               "",
                               "10.123.0.10",
                               kPaymentIp,
                               kTcpPort};
const Probe kOutsideOnRemoteNode{"outside the mesh on node-1 -> payment's IP",
                                 kRemote,
                                 "",
                                 "",
                                 "10.123.0.11",
                                 kPaymentIp,
                                 kTcpPort};

sockaddr_storage Addr(const std::string& ip, uint16_t port) {
  sockaddr_storage ss{};
  if (ip.find(':') == std::string::npos) {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    EXPECT_EQ(inet_pton(AF_INET, ip.c_str(), &a->sin_addr), 1) << ip;
  } else {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    EXPECT_EQ(inet_pton(AF_INET6, ip.c_str(), &a->sin6_addr), 1) << ip;
  }
  return ss;
}

socklen_t AddrLen(const sockaddr_storage& ss) {
  return ss.ss_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
}

// What the probe child reports in its exit status.
enum ChildResult : int {
  kChildConnected = 0,
  kChildSent = 1,
  kChildEperm = 2,
  kChildTimedOut = 3,
  kChildSetupFailed = 4,
  kChildOtherErrno = 10,  // + errno, capped
};

int ChildErr(int err) { return kChildOtherErrno + (err < 100 ? err : 99); }

// The probe child: system calls only (the parent has threads). cgroup first, namespace second:
// both decide how the hooks see the socket.
[[noreturn]] void ProbeChild(pid_t parent, int procs_fd, int netns_fd, const sockaddr_storage* src,
                             const sockaddr_storage& dst, bool udp) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(kChildSetupFailed);
  if (procs_fd >= 0 && ::write(procs_fd, "0", 1) != 1) ::_exit(kChildSetupFailed);
  if (::setns(netns_fd, CLONE_NEWNET) != 0) ::_exit(kChildSetupFailed);
  int fd = ::socket(dst.ss_family, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK, 0);
  if (fd < 0) ::_exit(kChildSetupFailed);
  if (src != nullptr && ::bind(fd, reinterpret_cast<const sockaddr*>(src), AddrLen(*src)) != 0) {
    ::_exit(kChildSetupFailed);
  }
  const auto* to = reinterpret_cast<const sockaddr*>(&dst);
  if (udp) {
    const char msg[] = "probe";
    if (::sendto(fd, msg, sizeof(msg), 0, to, AddrLen(dst)) >= 0) ::_exit(kChildSent);
    ::_exit(errno == EPERM ? kChildEperm : ChildErr(errno));
  }
  if (::connect(fd, to, AddrLen(dst)) == 0) ::_exit(kChildConnected);
  if (errno == EPERM) ::_exit(kChildEperm);
  if (errno != EINPROGRESS) ::_exit(ChildErr(errno));
  pollfd p{.fd = fd, .events = POLLOUT, .revents = 0};
  if (::poll(&p, 1, kDropWaitMs) == 0) ::_exit(kChildTimedOut);
  int err = 0;
  socklen_t len = sizeof(err);
  ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
  ::_exit(err == 0 ? kChildConnected : ChildErr(err));
}

// ---- Metrics --------------------------------------------------------------------------------

// The exact series text of one decision (labels in the order the agent writes them).
std::string Series(const std::string& action, const std::string& source, const std::string& policy,
                   const std::string& reporter, const std::string& destination = "shop/payment") {
  return absl::StrCat("sockmesh_policy_decisions_total{action=\"", action, "\",source_workload=\"",
                      source, "\",destination_workload=\"", destination, "\",policy=\"", policy,
                      "\",reporter=\"", reporter, "\"}");
}

// A series that must move by one, on `node`.
struct Moves {
  int node;
  std::string series;
};

using Counters = std::map<std::string, double>;  // "node-i series" -> value

Counters ParseDecisions(int node, const std::string& text) {
  Counters out;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!absl::StartsWith(line, "sockmesh_policy_decisions_total{")) continue;
    size_t space = line.rfind(' ');
    double v = 0;
    if (space == absl::string_view::npos || !absl::SimpleAtod(line.substr(space + 1), &v)) continue;
    out[absl::StrCat("node-", node, " ", line.substr(0, space))] = v;
  }
  return out;
}

// after - before, without the series that did not move.
Counters Moved(const Counters& before, const Counters& after) {
  Counters out;
  for (const auto& [k, v] : after) {
    auto it = before.find(k);
    double d = v - (it == before.end() ? 0 : it->second);
    if (d != 0) out[k] = d;
  }
  for (const auto& [k, v] : before) {
    if (!after.contains(k)) out[k] = -v;
  }
  return out;
}

std::string Show(const Counters& c) {
  if (c.empty()) return "(none)\n";
  std::string out;
  for (const auto& [k, v] : c) absl::StrAppend(&out, "  ", k, " +", v, "\n");
  return out;
}

// ---- The matrix ------------------------------------------------------------------------------

struct Expectation {
  const Probe* probe;
  Outcome outcome;
  std::vector<Moves> moves;
};

struct Row {
  std::string name;
  std::string policies;  // one file's worth of AuthorizationPolicies; "" = none
  std::vector<Expectation> expect;
};

// An AuthorizationPolicy on shop/payment (selector app=payment) with `spec_rest` appended to spec.
std::string PaymentPolicy(const std::string& name, const std::string& spec_rest) {
  return absl::StrCat(
      "apiVersion: sockmesh.io/v1alpha1\nkind: AuthorizationPolicy\nmetadata: {name: ", name,
      ", namespace: shop}\nspec:\n  selector: {matchLabels: {app: payment}}\n", spec_rest);
}

constexpr char kClientPrincipal[] = "cluster.local/ns/shop/sa/client";

class PolicyMatrixTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tmp_ = new TempDir("sockmesh-policy-matrix");
    ASSERT_FALSE(tmp_->path().empty()) << "mkdtemp: " << std::strerror(errno);
    home_ = CurrentCgroup();
    ASSERT_FALSE(home_.empty()) << "no cgroup v2 entry in /proc/self/cgroup";
    manifests_ = tmp_->path() + "/manifests";
    fs::create_directory(manifests_);
    auto mn = MultiNode::Create({.nodes = kNodes,
                                 .agent_bin = kAgentBin,
                                 .control_bin = kControlBin,
                                 .log_dir = tmp_->path()});
    ASSERT_TRUE(mn.ok()) << mn.status();
    mn_ = mn->release();
    for (int i = 0; i < kNodes; ++i) {
      absl::Status s = mn_->AddAddress(i, absl::StrCat("fd00:123::", 10 + i, "/64"));
      ASSERT_TRUE(s.ok()) << s;
    }
    cgroups_ = new std::vector<std::string>;
    for (const LocalWorkload& w : Workloads()) {
      for (const std::string& a : w.addresses) {
        absl::Status s = mn_->AddAddress(w.node, a);
        ASSERT_TRUE(s.ok()) << a << ": " << s;
      }
      const std::string ns_dir = absl::StrCat(mn_->node(w.node).cgroup, "/", w.ns);
      const std::string path = agent::WorkloadCgroupPath(mn_->node(w.node).cgroup, {w.ns, w.name});
      ASSERT_TRUE(agent::EnsureCgroup(ns_dir).ok()) << ns_dir;
      ASSERT_TRUE(agent::EnsureCgroup(path).ok()) << path;
      // Removed leaf first (TearDownTestSuite walks the list backwards).
      if (std::find(cgroups_->begin(), cgroups_->end(), ns_dir) == cgroups_->end()) {
        cgroups_->push_back(ns_dir);
      }
      cgroups_->push_back(path);
    }
    ASSERT_NO_FATAL_FAILURE(StartPaymentServers());

    WriteManifest(manifests_, "workloads.yaml", kWorkloadsYaml);
    absl::Status cp = mn_->StartControlPlane(manifests_);
    ASSERT_TRUE(cp.ok()) << cp;
    for (int i = 0; i < kNodes; ++i) {
      absl::Status s =
          mn_->StartAgent(i, {"--metrics-addr", absl::StrCat("127.0.0.1:", kMetricsPort)});
      ASSERT_TRUE(s.ok()) << mn_->node(i).name << ": " << s;
    }
    ASSERT_NO_FATAL_FAILURE(WaitForWorkloadCgroupsMapped());
  }

  static void TearDownTestSuite() {
    delete tcp_;
    delete udp_;
    tcp_ = udp_ = nullptr;
    // The workload cgroups go before MultiNode's destructor removes the node cgroups above them;
    // nothing runs in them any more (every probe child was reaped).
    if (cgroups_ != nullptr) {
      for (auto it = cgroups_->rbegin(); it != cgroups_->rend(); ++it) ::rmdir(it->c_str());
    }
    delete cgroups_;
    cgroups_ = nullptr;
    delete mn_;
    mn_ = nullptr;
    delete tmp_;
    tmp_ = nullptr;
  }

  // payment's servers: dual-stack sockets on every address of node-0, created while this
  // process is in payment's cgroup (a socket keeps the cgroup of its creator).
  static void StartPaymentServers() {
    const std::string payment = WorkloadCgroup(kDest, "shop", "payment");
    ASSERT_TRUE(agent::JoinCgroup(payment, ::getpid()).ok());
    absl::Status entered = MultiNode::InNetns(mn_->node(kDest).netns_fd.get(), [] {
      tcp_ = new sys::UniqueFd(DualStackSocket(SOCK_STREAM, kTcpPort));
      udp_ = new sys::UniqueFd(DualStackSocket(SOCK_DGRAM, kUdpPort));
    });
    ASSERT_TRUE(agent::JoinCgroup(home_, ::getpid()).ok());
    ASSERT_TRUE(entered.ok()) << entered;
    ASSERT_TRUE(tcp_->valid() && udp_->valid());
  }

  static sys::UniqueFd DualStackSocket(int type, uint16_t port) {
    sys::UniqueFd fd(::socket(AF_INET6, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    int zero = 0, one = 1;
    ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_storage any = Addr("::", port);
    EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&any), AddrLen(any)), 0)
        << "[::]:" << port << ": " << std::strerror(errno);
    if (type == SOCK_STREAM) EXPECT_EQ(::listen(fd.get(), 1024), 0);
    return fd;
  }

  static std::string WorkloadCgroup(int node, const std::string& ns, const std::string& name) {
    return agent::WorkloadCgroupPath(mn_->node(node).cgroup, {ns, name});
  }

  // Each node's agent maps its local workload cgroups within about a second (it polls the tree).
  static void WaitForWorkloadCgroupsMapped() {
    for (const LocalWorkload& w : Workloads()) {
      const MultiNode::Node& n = mn_->node(w.node);
      absl::StatusOr<uint64_t> id = agent::CgroupId(WorkloadCgroup(w.node, w.ns, w.name));
      ASSERT_TRUE(id.ok()) << id.status();
      auto map = bpf::TypedMap<uint64_t, sm_identity>::FromPinned(
          absl::StrCat("/sys/fs/bpf/sockmesh/", n.instance, "/maps/sm_cgroup_identity_v1"));
      ASSERT_TRUE(map.ok()) << map.status();
      absl::Time deadline = absl::Now() + kPropagateTimeout;
      bool mapped = false;
      while (!(mapped = map->Lookup(*id).ok()) && absl::Now() < deadline) {
        absl::SleepFor(absl::Milliseconds(100));
      }
      ASSERT_TRUE(mapped) << w.ns << "/" << w.name << " not in " << n.name
                          << "'s sm_cgroup_identity_v1";
    }
  }

  static Json Status() {
    return ReadControlPlaneStatus(kCtlBin, mn_->control_address(), mn_->Log("status"),
                                  mn_->control_netns_fd());
  }

  static bool AllSyncedAt(const Json& s, uint64_t version) {
    if (!s.is_object() || s["current_version"].get<uint64_t>() < version) return false;
    if (s["agents"].size() != static_cast<size_t>(kNodes)) return false;
    for (const Json& a : s["agents"]) {
      if (a["status"] != "SYNCED" || a["last_acked_version"] != s["current_version"]) return false;
    }
    return true;
  }

  // Writes the row's policies as one file (or removes it) and waits until every agent ACKed the
  // version that carries them.
  void ApplyPolicies(const std::string& yaml) {
    Json before = Status();
    ASSERT_TRUE(before.is_object()) << "sockmeshctl status failed";
    const uint64_t v0 = before["current_version"];
    const fs::path file = fs::path(manifests_) / kPolicyFile;
    if (yaml.empty() && !fs::exists(file)) {  // nothing changes: no new version
      ASSERT_TRUE(AllSyncedAt(before, v0)) << before.dump();
      return;
    }
    if (yaml.empty()) {
      fs::remove(file);
    } else {
      WriteManifest(manifests_, kPolicyFile, yaml);
    }
    Json after =
        WaitForStatus([] { return Status(); },
                      [&](const Json& s) { return AllSyncedAt(s, v0 + 1); }, kPropagateTimeout);
    ASSERT_TRUE(AllSyncedAt(after, v0 + 1)) << after.dump() << "\ncontrol plane log tail:\n"
                                            << Tail(mn_->control()->Log());
  }

  static std::string Tail(const std::string& log) {
    return log.size() > 3000 ? log.substr(log.size() - 3000) : log;
  }

  static Counters ScrapeDecisions() {
    Counters all;
    for (int i = 0; i < kNodes; ++i) {
      std::string text;
      absl::Status entered =
          MultiNode::InNetns(mn_->node(i).netns_fd.get(), [&] { text = Scrape(kMetricsPort); });
      EXPECT_TRUE(entered.ok()) << entered;
      EXPECT_FALSE(text.empty()) << "no /metrics from " << mn_->node(i).name;
      all.merge(ParseDecisions(i, text));
    }
    return all;
  }

  // Drains what earlier probes left on payment's servers.
  static void DrainServers() {
    while (true) {
      int c = ::accept4(tcp_->get(), nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) break;
      ::close(c);
    }
    char buf[64];
    while (::recv(udp_->get(), buf, sizeof(buf), MSG_DONTWAIT) >= 0) {
    }
  }

  // Whether a datagram reaches payment's UDP socket within kUdpWaitMs.
  static bool DatagramArrived() {
    pollfd p{.fd = udp_->get(), .events = POLLIN, .revents = 0};
    if (::poll(&p, 1, kUdpWaitMs) <= 0) return false;
    char buf[64];
    return ::recv(udp_->get(), buf, sizeof(buf), MSG_DONTWAIT) > 0;
  }

  // Runs `p` in a forked process and says what happened; `detail` explains an other error.
  static Outcome Run(const Probe& p, std::string* detail) {
    DrainServers();
    const MultiNode::Node& node = mn_->node(p.node);
    sys::UniqueFd procs;
    if (!p.workload_name.empty()) {
      const std::string path =
          WorkloadCgroup(p.node, p.workload_ns, p.workload_name) + "/cgroup.procs";
      procs = sys::UniqueFd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
      if (!procs.valid()) {
        *detail = absl::StrCat("open ", path, ": ", std::strerror(errno));
        return Outcome::kOtherError;
      }
    }
    const sockaddr_storage dst = Addr(p.dest, p.port);
    const sockaddr_storage src = Addr(p.source.empty() ? "::" : p.source, 0);
    const pid_t parent = ::getpid();
    const pid_t child = ::fork();
    if (child < 0) {
      *detail = absl::StrCat("fork: ", std::strerror(errno));
      return Outcome::kOtherError;
    }
    if (child == 0) {
      ProbeChild(parent, procs.valid() ? procs.get() : -1, node.netns_fd.get(),
                 p.source.empty() ? nullptr : &src, dst, p.udp);
    }
    int status = 0;
    while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
    }
    const int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    switch (code) {
      case kChildConnected:
        return Outcome::kConnected;
      case kChildSent:
        return DatagramArrived() ? Outcome::kConnected : Outcome::kDroppedAtDestination;
      case kChildEperm:
        return Outcome::kRefusedAtClient;
      case kChildTimedOut:
        return Outcome::kDroppedAtDestination;
      case kChildSetupFailed:
        *detail = "the probe could not join its cgroup/namespace, open or bind its socket";
        return Outcome::kOtherError;
      default:
        *detail = code >= kChildOtherErrno ? std::strerror(code - kChildOtherErrno)
                                           : absl::StrCat("exit status ", status);
        return Outcome::kOtherError;
    }
  }

  // Applies the row's policies, then runs each probe and checks its outcome and the series it
  // moved on both nodes (exactly those, by exactly one per expected move).
  void RunRow(const Row& row) {
    SCOPED_TRACE(row.name);
    ASSERT_NO_FATAL_FAILURE(ApplyPolicies(row.policies));
    for (const Expectation& e : row.expect) {
      SCOPED_TRACE(e.probe->what);
      Counters before = ScrapeDecisions();
      std::string detail;
      Outcome got = Run(*e.probe, &detail);
      EXPECT_EQ(OutcomeName(got), OutcomeName(e.outcome)) << detail;
      Counters want;
      for (const Moves& m : e.moves) want[absl::StrCat("node-", m.node, " ", m.series)] += 1;
      // The destination's counters are read when the packet was decided; the scrape after the
      // outcome sees them.
      Counters moved = Moved(before, ScrapeDecisions());
      EXPECT_EQ(moved, want) << "moved:\n" << Show(moved) << "wanted:\n" << Show(want);
    }
    ExpectEverySeriesNamedTruthfully(ScrapeDecisions());
  }

  // Policies are renumbered whenever the set changes: counts kept from an earlier row must not
  // show up under a later policy's name. The test's policy names say their action (deny-*,
  // allow-*, audit-*), and every destination is a workload a policy selects now.
  static void ExpectEverySeriesNamedTruthfully(const Counters& all) {
    for (const auto& [series, value] : all) {
      const std::string policy = Label(series, "policy");
      const size_t slash = policy.find('/');
      if (slash != std::string::npos) {
        const std::string name = policy.substr(slash + 1);
        const std::string action = Label(series, "action");
        EXPECT_TRUE(absl::StartsWith(name, action + "-"))
            << "a count reported under another policy's name: " << series << " " << value;
      }
      EXPECT_NE(Label(series, "destination_workload"), "unknown")
          << "a count of an endpoint that is gone: " << series << " " << value;
    }
  }

  // The value of label `name` in a series' text.
  static std::string Label(const std::string& series, const std::string& name) {
    const std::string start = absl::StrCat(name, "=\"");
    size_t at = series.find(absl::StrCat("{", start));
    if (at == std::string::npos) at = series.find(absl::StrCat(",", start));
    if (at == std::string::npos) return "";
    at += start.size() + 1;
    return series.substr(at, series.find('"', at) - at);
  }

  static inline TempDir* tmp_ = nullptr;
  static inline std::string home_;
  static inline std::string manifests_;
  static inline MultiNode* mn_ = nullptr;
  static inline std::vector<std::string>* cgroups_ = nullptr;
  static inline sys::UniqueFd* tcp_ = nullptr;
  static inline sys::UniqueFd* udp_ = nullptr;
};

// Shorthands for the expected series.
Moves AtClient(int node, const std::string& action, const std::string& source,
               const std::string& policy) {
  return {node, Series(action, source, policy, "source")};
}
Moves AtDest(const std::string& action, const std::string& source, const std::string& policy) {
  return {kDest, Series(action, source, policy, "destination")};
}

// The matrix. Rows run in order in one test: they share the harness, and each row's "before" is
// the no-policy row's result for the same probe.
TEST_F(PolicyMatrixTest, EvaluationOrderAndBypassAttempts) {
  const std::vector<const Probe*> all = {
      &kClientToBackend,   &kClientToVip,        &kClientToIpv6,      &kClientUdp,
      &kClientUdpIpv6,     &kIntruderToBackend,  &kFrontendToBackend, &kFrontendToLoopback6,
      &kOutsideOnDestNode, &kOutsideOnRemoteNode};
  Row baseline{.name = "no policy: everything connects, nothing is counted (not selected)"};
  for (const Probe* p : all) baseline.expect.push_back({p, Outcome::kConnected, {}});

  const std::string deny_client =
      PaymentPolicy("deny-client", absl::StrCat("  action: DENY\n  rules:\n  - from: [{source: "
                                                "{principals: [\"",
                                                kClientPrincipal, "\"]}}]\n"));
  const std::string allow_client_7100 = PaymentPolicy(
      "allow-client",
      absl::StrCat("  action: ALLOW\n  rules:\n  - from: [{source: {principals: [\"",
                   kClientPrincipal, "\"]}}]\n    to: [{operation: {ports: [\"7100\"]}}]\n"));
  const std::string allow_shop = PaymentPolicy(
      "allow-shop", "  action: ALLOW\n  rules:\n  - from: [{source: {namespaces: [shop]}}]\n");
  const std::string audit_client = PaymentPolicy(
      "audit-client", absl::StrCat("  action: AUDIT\n  rules:\n  - from: [{source: {principals: "
                                   "[\"",
                                   kClientPrincipal, "\"]}}]\n"));
  const std::string allow_client_ip =
      PaymentPolicy("allow-client-ip",
                    absl::StrCat("  action: ALLOW\n  rules:\n  - from: [{source: {ipBlocks: [\"",
                                 kClientIp, "/32\"]}}]\n"));
  const std::string deny_not_pods = PaymentPolicy(
      "deny-not-pods",
      "  action: DENY\n  rules:\n  - from: [{source: {notIpBlocks: [\"10.123.0.96/28\"]}}]\n");
  const std::string deny_not_client =
      PaymentPolicy("deny-not-client", absl::StrCat("  action: DENY\n  rules:\n  - from: [{source: "
                                                    "{notPrincipals: [\"",
                                                    kClientPrincipal, "\"]}}]\n"));
  const std::string deny_outside_shop =
      "apiVersion: sockmesh.io/v1alpha1\nkind: AuthorizationPolicy\n"
      "metadata: {name: deny-outside-shop, namespace: sockmesh-system}\n"
      "spec:\n  action: DENY\n  rules:\n  - from: [{source: {notNamespaces: [shop]}}]\n";
  const std::string allow_nothing =
      "apiVersion: sockmesh.io/v1alpha1\nkind: AuthorizationPolicy\n"
      "metadata: {name: allow-nothing, namespace: shop}\nspec: {}\n";

  const std::vector<Row> rows = {
      baseline,
      {.name = "a matching DENY denies, on every path; no ALLOW policy selects payment: allowed",
       .policies = deny_client,
       .expect =
           {
               {&kClientToBackend,
                Outcome::kRefusedAtClient,
                {AtClient(kRemote, "deny", "shop/client", "shop/deny-client")}},
               {&kClientToVip,
                Outcome::kRefusedAtClient,
                {AtClient(kRemote, "deny", "shop/client", "shop/deny-client")}},
               {&kClientUdp,
                Outcome::kRefusedAtClient,
                {AtClient(kRemote, "deny", "shop/client", "shop/deny-client")}},
               // payment's IPv6 address is not its endpoint: the client side lets it go, the
               // destination knows the socket is payment's and the source by its address.
               {&kClientToIpv6,
                Outcome::kDroppedAtDestination,
                {AtDest("deny", "shop/client", "shop/deny-client")}},
               {&kClientUdpIpv6,
                Outcome::kDroppedAtDestination,
                {AtDest("deny", "shop/client", "shop/deny-client")}},
               {&kIntruderToBackend,
                Outcome::kConnected,
                {AtClient(kRemote, "allow", "other/intruder", "no_allow_policy"),
                 AtDest("allow", "other/intruder", "no_allow_policy")}},
           }},
      {.name = "an ALLOW matches: allowed; ALLOW policies but none matches: denied",
       .policies = allow_client_7100,
       .expect =
           {
               {&kClientToBackend,
                Outcome::kConnected,
                {AtClient(kRemote, "allow", "shop/client", "shop/allow-client"),
                 AtDest("allow", "shop/client", "shop/allow-client")}},
               {&kClientToVip,
                Outcome::kConnected,
                {AtClient(kRemote, "allow", "shop/client", "shop/allow-client"),
                 AtDest("allow", "shop/client", "shop/allow-client")}},
               // The rule's port is 7100: UDP to 7101 matches no ALLOW.
               {&kClientUdp,
                Outcome::kRefusedAtClient,
                {AtClient(kRemote, "deny", "shop/client", "no_allow_match")}},
               {&kIntruderToBackend,
                Outcome::kRefusedAtClient,
                {AtClient(kRemote, "deny", "other/intruder", "no_allow_match")}},
               {&kFrontendToBackend,
                Outcome::kRefusedAtClient,
                {AtClient(kDest, "deny", "shop/frontend", "no_allow_match")}},
               // ::1 is no endpoint address; the destination knows frontend by the flow its
               // egress recorded.
               {&kFrontendToLoopback6,
                Outcome::kDroppedAtDestination,
                {AtDest("deny", "shop/frontend", "no_allow_match")}},
               {&kOutsideOnDestNode,
                Outcome::kDroppedAtDestination,
                {AtDest("deny", "unknown", "no_allow_match")}},
               {&kOutsideOnRemoteNode,
                Outcome::kDroppedAtDestination,
                {AtDest("deny", "unknown", "no_allow_match")}},
           }},
      {.name = "DENY before ALLOW; namespaces",
       .policies = absl::StrCat(deny_client, "---\n", allow_shop),
       .expect =
           {
               {&kClientToBackend,
                Outcome::kRefusedAtClient,
                {AtClient(kRemote, "deny", "shop/client", "shop/deny-client")}},
               {&kFrontendToBackend,
                Outcome::kConnected,
                {AtClient(kDest, "allow", "shop/frontend", "shop/allow-shop"),
                 AtDest("allow", "shop/frontend", "shop/allow-shop")}},
               {&kIntruderToBackend,
                Outcome::kRefusedAtClient,
                {AtClient(kRemote, "deny", "other/intruder", "no_allow_match")}},
           }},
      {.name = "AUDIT only counts",
       .policies = audit_client,
       .expect =
           {
               {&kClientToBackend,
                Outcome::kConnected,
                {AtClient(kRemote, "allow", "shop/client", "no_allow_policy"),
                 AtClient(kRemote, "audit", "shop/client", "shop/audit-client"),
                 AtDest("allow", "shop/client", "no_allow_policy"),
                 AtDest("audit", "shop/client", "shop/audit-client")}},
               {&kIntruderToBackend,
                Outcome::kConnected,
                {AtClient(kRemote, "allow", "other/intruder", "no_allow_policy"),
                 AtDest("allow", "other/intruder", "no_allow_policy")}},
           }},
      {.name = "spec: {} allows nothing (every workload of shop)",
       .policies = allow_nothing,
       .expect =
           {
               {&kClientToBackend,
                Outcome::kRefusedAtClient,
                {AtClient(kRemote, "deny", "shop/client", "no_allow_match")}},
               {&kFrontendToBackend,
                Outcome::kRefusedAtClient,
                {AtClient(kDest, "deny", "shop/frontend", "no_allow_match")}},
               {&kClientToIpv6,
                Outcome::kDroppedAtDestination,
                {AtDest("deny", "shop/client", "no_allow_match")}},
           }},
      {.name = "ipBlocks: decided at the destination only, by source address",
       .policies = allow_client_ip,
       .expect =
           {
               {&kClientToBackend,
                Outcome::kConnected,
                {AtDest("allow", "shop/client", "shop/allow-client-ip")}},
               {&kIntruderToBackend,
                Outcome::kDroppedAtDestination,
                {AtDest("deny", "other/intruder", "no_allow_match")}},
               {&kOutsideOnRemoteNode,
                Outcome::kDroppedAtDestination,
                {AtDest("deny", "unknown", "no_allow_match")}},
           }},
      {.name = "notIpBlocks",
       .policies = deny_not_pods,
       .expect =
           {
               {&kClientToBackend,
                Outcome::kConnected,
                {AtDest("allow", "shop/client", "no_allow_policy")}},
               {&kOutsideOnRemoteNode,
                Outcome::kDroppedAtDestination,
                {AtDest("deny", "unknown", "shop/deny-not-pods")}},
               // An IPv6 source is outside an IPv4 block too.
               {&kClientToIpv6,
                Outcome::kDroppedAtDestination,
                {AtDest("deny", "shop/client", "shop/deny-not-pods")}},
           }},
      {.name = "notPrincipals (the world included)",
       .policies = deny_not_client,
       .expect =
           {
               {&kClientToBackend,
                Outcome::kConnected,
                {AtClient(kRemote, "allow", "shop/client", "no_allow_policy"),
                 AtDest("allow", "shop/client", "no_allow_policy")}},
               {&kIntruderToBackend,
                Outcome::kRefusedAtClient,
                {AtClient(kRemote, "deny", "other/intruder", "shop/deny-not-client")}},
               {&kOutsideOnDestNode,
                Outcome::kDroppedAtDestination,
                {AtDest("deny", "unknown", "shop/deny-not-client")}},
           }},
      {.name = "the root namespace applies mesh-wide; notNamespaces (the world included)",
       .policies = deny_outside_shop,
       .expect =
           {
               {&kClientToBackend,
                Outcome::kConnected,
                {AtClient(kRemote, "allow", "shop/client", "no_allow_policy"),
                 AtDest("allow", "shop/client", "no_allow_policy")}},
               {&kIntruderToBackend,
                Outcome::kRefusedAtClient,
                {AtClient(kRemote, "deny", "other/intruder", "sockmesh-system/deny-outside-shop")}},
               {&kOutsideOnDestNode,
                Outcome::kDroppedAtDestination,
                {AtDest("deny", "unknown", "sockmesh-system/deny-outside-shop")}},
           }},
  };
  for (const Row& row : rows) {
    ASSERT_NO_FATAL_FAILURE(RunRow(row));
    if (HasFailure()) break;  // later rows would only repeat the cause
  }
  // Policies removed: nothing selects payment any more, everything connects uncounted again.
  RunRow({.name = "policies removed", .policies = "", .expect = baseline.expect});
}

}  // namespace
}  // namespace sockmesh::testing
