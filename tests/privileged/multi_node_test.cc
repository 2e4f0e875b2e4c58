// SPDX-License-Identifier: Apache-2.0
// Three nodes on one machine (tests/support/multi_node.h): each a network namespace on a bridge
// with its own cgroup, pin instance and sockmesh-agent, all following one sockmesh-control over
// the veths. A Service's VIP is in 127.10.0.0/16 (loopback in every node, so a missing hook fails
// locally) and its backends are NameServers "b<i>" on the nodes' 10.123.0.<10+i> addresses.
#include "tests/support/multi_node.h"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/substitute.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/support/agent_process.h"
#include "tests/support/control_plane_status.h"
#include "tests/support/manifest_files.h"
#include "tests/support/metrics_scrape.h"
#include "tests/support/name_server.h"
#include "tests/support/temp_dir.h"

#if !defined(SOCKMESH_AGENT_BIN) || !defined(SOCKMESH_CONTROL_BIN) || !defined(SOCKMESH_CTL_BIN)
#error \
    "SOCKMESH_{AGENT,CONTROL,CTL}_BIN must name the binaries (set by tests/privileged/CMakeLists)"
#endif

namespace sockmesh::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using Json = nlohmann::json;

constexpr char kAgentBin[] = SOCKMESH_AGENT_BIN;
constexpr char kControlBin[] = SOCKMESH_CONTROL_BIN;
constexpr char kCtlBin[] = SOCKMESH_CTL_BIN;
constexpr int kNodes = 3;
constexpr uint16_t kVipPort = 80;
// Each node's namespace is private, so one fixed backend port serves on every node.
constexpr uint16_t kBackendPort = 8080;
// inotify + debounce + a push over the veths and an ACK, with slack for a loaded machine.
constexpr absl::Duration kPropagateTimeout = absl::Seconds(10);

// A Service with one TCP port and its EndpointSlice, in one file.
std::string ServiceYaml(const std::string& name, const std::string& vip,
                        const std::vector<std::string>& endpoints,
                        const std::string& algorithm = "random") {
  return OneTcpServiceYaml(name, vip, kVipPort, endpoints, kBackendPort, algorithm);
}

uint32_t Mask(const std::vector<int>& nodes) {
  uint32_t m = 0;
  for (int i : nodes) m |= 1u << i;
  return m;
}

std::string Describe(const ClientTally& t) {
  return absl::StrCat("answered ", t.answered, ", failed ", t.failed,
                      " (first: ", std::strerror(t.first_errno), "), backends mask ",
                      t.backend_mask);
}

class MultiNodeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(tmp_.path().empty()) << "mkdtemp: " << std::strerror(errno);
    manifests_ = tmp_.path() + "/manifests";
    fs::create_directory(manifests_);
    auto mn = MultiNode::Create({.nodes = kNodes,
                                 .agent_bin = kAgentBin,
                                 .control_bin = kControlBin,
                                 .log_dir = tmp_.path()});
    ASSERT_TRUE(mn.ok()) << mn.status();
    mn_ = *std::move(mn);
    // Backend b<i> on node i, bound to the node's own address inside its namespace.
    for (int i = 0; i < kNodes; ++i) {
      absl::StatusOr<std::unique_ptr<NameServer>> server;
      absl::Status entered = MultiNode::InNetns(mn_->node(i).netns_fd.get(), [&] {
        server = NameServer::Start(absl::StrCat("b", i), NameServer::Kind::kTcp, mn_->node(i).ip,
                                   kBackendPort);
      });
      ASSERT_TRUE(entered.ok()) << entered;
      ASSERT_TRUE(server.ok()) << server.status();
      backends_.push_back(*std::move(server));
    }
  }

  void TearDown() override {
    // Backends hold sockets in the nodes' namespaces: close them before the namespaces go.
    backends_.clear();
    mn_.reset();
  }

  std::vector<std::string> Ips(const std::vector<int>& nodes) {
    std::vector<std::string> out;
    for (int i : nodes) out.push_back(mn_->node(i).ip);
    return out;
  }

  void StartAll(const std::vector<std::string>& extra_last = {}) {
    absl::Status cp = mn_->StartControlPlane(manifests_);
    ASSERT_TRUE(cp.ok()) << cp;
    for (int i = 0; i < kNodes; ++i) {
      absl::Status s =
          mn_->StartAgent(i, i == kNodes - 1 ? extra_last : std::vector<std::string>{});
      ASSERT_TRUE(s.ok()) << mn_->node(i).name << ": " << s;
    }
  }

  ClientTally Dial(int node, const std::string& vip, uint32_t n) {
    absl::StatusOr<ClientTally> t = DialFromNode(mn_->node(node), vip, kVipPort, n);
    EXPECT_TRUE(t.ok()) << t.status();
    return t.ok() ? *t : ClientTally{};
  }

  // `sockmeshctl status -o json` run in the control namespace; null on failure.
  Json Status() {
    return ReadControlPlaneStatus(kCtlBin, mn_->control_address(), mn_->Log("status"),
                                  mn_->control_netns_fd());
  }

  // Polls the status until `pred` holds for it; returns the last one seen.
  Json WaitForStatus(const std::function<bool(const Json&)>& pred, absl::Duration timeout) {
    return ::sockmesh::testing::WaitForStatus([this] { return Status(); }, pred, timeout);
  }

  static const Json* Agent(const Json& status, const std::string& node) {
    return AgentStatus(status, node);
  }

  static bool AllSynced(const Json& status) {
    if (status["agents"].size() != static_cast<size_t>(kNodes)) return false;
    for (const Json& a : status["agents"]) {
      if (a["status"] != "SYNCED") return false;
    }
    return true;
  }

  // The backend addresses node i's pinned maps hold for `frontend` ("vip:80/TCP"), from
  // `sockmeshctl services`; the maps are per instance, so this reads that node's kernel state.
  std::set<std::string> KernelBackends(int i, const std::string& frontend) {
    auto run = RunAgentToCompletion(kCtlBin,
                                    {"services", "--instance", mn_->node(i).instance, "-o", "json"},
                                    mn_->Log("services"));
    std::set<std::string> out;
    if (!run.ok() || run->exit_code != 0) return out;
    size_t start = run->log.find('{');
    if (start == std::string::npos) return out;
    Json j = Json::parse(run->log.substr(start), nullptr, false);
    if (!j.is_object()) return out;
    for (const Json& s : j["services"]) {
      if (s["frontend"] != frontend) continue;
      for (const Json& b : s["backends"]) out.insert(b["address"].get<std::string>());
    }
    return out;
  }

  // Polls every node's maps until each holds `want` for `frontend`.
  void WaitForKernelBackends(const std::string& frontend, const std::set<std::string>& want) {
    absl::Time deadline = absl::Now() + kPropagateTimeout;
    for (int i = 0; i < kNodes; ++i) {
      std::set<std::string> got;
      while ((got = KernelBackends(i, frontend)) != want && absl::Now() < deadline) {
        absl::SleepFor(absl::Milliseconds(100));
      }
      EXPECT_EQ(got, want) << mn_->node(i).name;
    }
  }

  TempDir tmp_{"sockmesh-mn-test"};
  std::string manifests_;
  std::unique_ptr<MultiNode> mn_;
  std::vector<std::unique_ptr<NameServer>> backends_;
};

// Connections from every node's cgroup and namespace reach backends on all nodes, over the bridge.
// An endpoint added and then removed in the EndpointSlice reaches every node's kernel maps.
TEST_F(MultiNodeTest, ServiceAcrossNodesAndEndpointEdits) {
  const std::string vip = "127.10.220.1";
  const std::string frontend = vip + ":80/TCP";
  WriteManifest(manifests_, "web.yaml", ServiceYaml("web", vip, Ips({0, 1, 2})));
  ASSERT_NO_FATAL_FAILURE(StartAll());

  for (int i = 0; i < kNodes; ++i) {
    ClientTally t = Dial(i, vip, 30);
    EXPECT_EQ(t.failed, 0u) << mn_->node(i).name << ": " << Describe(t);
    EXPECT_EQ(t.backend_mask, Mask({0, 1, 2})) << mn_->node(i).name << ": " << Describe(t);
  }
  Json status = WaitForStatus(AllSynced, kPropagateTimeout);
  uint64_t v1 = status["current_version"];

  // Remove node 1's endpoint: every node's maps drop it, and no client reaches b1 any more.
  WriteManifest(manifests_, "web.yaml", ServiceYaml("web", vip, Ips({0, 2})));
  WaitForKernelBackends(frontend, {mn_->node(0).ip, mn_->node(2).ip});
  for (int i = 0; i < kNodes; ++i) {
    ClientTally t = Dial(i, vip, 20);
    EXPECT_EQ(t.failed, 0u) << mn_->node(i).name << ": " << Describe(t);
    EXPECT_EQ(t.backend_mask, Mask({0, 2})) << mn_->node(i).name << ": " << Describe(t);
  }
  // And add it back.
  WriteManifest(manifests_, "web.yaml", ServiceYaml("web", vip, Ips({0, 1, 2})));
  WaitForKernelBackends(frontend, {mn_->node(0).ip, mn_->node(1).ip, mn_->node(2).ip});
  WaitForStatus([&](const Json& s) { return AllSynced(s) && s["current_version"] >= v1 + 2; },
                kPropagateTimeout);

  // Without a hook the VIP is just loopback: a cgroup-less client on node 0 is refused locally,
  // which proves the traffic above went through each node's own datapath.
  absl::StatusOr<ClientTally> raw;
  absl::Status entered = MultiNode::InNetns(mn_->node(0).netns_fd.get(), [&] {
    DialResult r = DialTcp(vip, kVipPort, "", 0, 3000);
    raw = ClientTally{.failed = r.error != 0 ? 1u : 0u, .first_errno = r.error};
  });
  ASSERT_TRUE(entered.ok()) << entered;
  EXPECT_EQ(raw->first_errno, ECONNREFUSED);
}

// SIGKILL the control plane while every node dials in a loop: each datapath keeps its pinned
// state, so no connection fails. When it returns, every agent reconnects over its veth and ACKs.
TEST_F(MultiNodeTest, ControlPlaneKilledUnderTrafficFromAllNodes) {
  const std::string vip = "127.10.221.1";
  WriteManifest(manifests_, "web.yaml", ServiceYaml("web", vip, Ips({0, 1, 2})));
  ASSERT_NO_FATAL_FAILURE(StartAll());

  std::vector<std::unique_ptr<NodeClient>> clients;
  for (int i = 0; i < kNodes; ++i) {
    auto c = NodeClient::Start(mn_->node(i), vip, kVipPort);
    ASSERT_TRUE(c.ok()) << c.status();
    clients.push_back(*std::move(c));
  }
  absl::SleepFor(absl::Milliseconds(300));
  std::vector<size_t> from;
  for (int i = 0; i < kNodes; ++i) from.push_back(mn_->node(i).agent->Log().size());
  ASSERT_TRUE(mn_->KillControlPlane().ok());
  for (int i = 0; i < kNodes; ++i) {
    EXPECT_TRUE(mn_->node(i).agent->WaitForLog("reconnecting to", kPropagateTimeout, from[i]).ok());
  }
  absl::SleepFor(absl::Milliseconds(700));
  for (int i = 0; i < kNodes; ++i) from[i] = mn_->node(i).agent->Log().size();
  absl::Status restarted = mn_->StartControlPlane(manifests_);
  ASSERT_TRUE(restarted.ok()) << restarted;
  for (int i = 0; i < kNodes; ++i) {
    absl::Status acked = mn_->node(i).agent->WaitForLog("; ACK", absl::Seconds(15), from[i]);
    EXPECT_TRUE(acked.ok()) << acked;
  }
  absl::SleepFor(absl::Milliseconds(300));
  for (int i = 0; i < kNodes; ++i) {
    absl::StatusOr<ClientTally> t = clients[i]->Finish();
    ASSERT_TRUE(t.ok()) << t.status();
    EXPECT_EQ(t->failed, 0u) << mn_->node(i).name << ": " << Describe(*t);
    EXPECT_GT(t->answered, 20u) << mn_->node(i).name << ": " << Describe(*t);
    EXPECT_EQ(t->backend_mask, Mask({0, 1, 2})) << mn_->node(i).name << ": " << Describe(*t);
  }

  Json status = WaitForStatus(AllSynced, kPropagateTimeout);
  for (const Json& a : status["agents"]) {
    EXPECT_EQ(a["last_acked_version"], status["current_version"]) << a.dump();
  }
}

// Node 2's selection-table map is too small for a Maglev table (1021 slots > 512 entries): it
// NACKs the version that adds one and keeps serving the previous version; nodes 0 and 1 apply it.
TEST_F(MultiNodeTest, NackedUpdateOnOneNodeKeepsItsOldState) {
  const std::string web = "127.10.222.1";
  const std::string big = "127.10.222.2";
  WriteManifest(manifests_, "web.yaml", ServiceYaml("web", web, Ips({0, 1, 2})));
  ASSERT_NO_FATAL_FAILURE(StartAll({"--max-lut-entries", "512"}));

  std::vector<size_t> from;
  for (int i = 0; i < kNodes; ++i) from.push_back(mn_->node(i).agent->Log().size());
  WriteManifest(manifests_, "big.yaml", ServiceYaml("big", big, Ips({0, 1}), "maglev"));
  for (int i = 0; i < kNodes - 1; ++i) {
    absl::Status applied =
        mn_->node(i).agent->WaitForLog("applied delta", kPropagateTimeout, from[i]);
    EXPECT_TRUE(applied.ok()) << applied;
  }
  absl::Status nacked =
      mn_->node(kNodes - 1).agent->WaitForLog("; NACK", kPropagateTimeout, from[kNodes - 1]);
  ASSERT_TRUE(nacked.ok()) << nacked;

  Json status = WaitForStatus(
      [&](const Json& s) {
        const Json* a = Agent(s, mn_->node(kNodes - 1).name);
        return a != nullptr && (*a)["status"] == "NACKED";
      },
      kPropagateTimeout);
  for (int i = 0; i < kNodes - 1; ++i) {
    const Json* a = Agent(status, mn_->node(i).name);
    ASSERT_NE(a, nullptr);
    EXPECT_EQ((*a)["status"], "SYNCED");
  }
  const Json* last = Agent(status, mn_->node(kNodes - 1).name);
  ASSERT_NE(last, nullptr);
  EXPECT_EQ((*last)["last_nacked_version"], status["current_version"]);
  EXPECT_THAT((*last)["last_nack_error"].get<std::string>(), HasSubstr("cannot be written"));

  // Node 2 still runs the old version: web works there, big does not exist there.
  ClientTally web_2 = Dial(kNodes - 1, web, 20);
  EXPECT_EQ(web_2.failed, 0u) << Describe(web_2);
  EXPECT_EQ(web_2.backend_mask, Mask({0, 1, 2})) << Describe(web_2);
  EXPECT_EQ(Dial(kNodes - 1, big, 3).answered, 0u);
  EXPECT_TRUE(KernelBackends(kNodes - 1, big + ":80/TCP").empty());
  // The others have both.
  for (int i = 0; i < kNodes - 1; ++i) {
    ClientTally t = Dial(i, big, 20);
    EXPECT_EQ(t.failed, 0u) << mn_->node(i).name << ": " << Describe(t);
    EXPECT_EQ(t.backend_mask, Mask({0, 1})) << mn_->node(i).name << ": " << Describe(t);
    ClientTally w = Dial(i, web, 10);
    EXPECT_EQ(w.failed, 0u) << mn_->node(i).name << ": " << Describe(w);
  }
}

}  // namespace
}  // namespace sockmesh::testing
