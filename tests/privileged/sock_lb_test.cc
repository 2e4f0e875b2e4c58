// SPDX-License-Identifier: Apache-2.0
// The socket load balancer with real sockets through the real hooks: each test attaches the
// programs to its own throwaway cgroup, joins it, and dials service VIPs in 127.10.0.0/16 (or, for
// IPv6, in a private network namespace) so that a missing hook fails locally, never outward.
#include <netinet/in.h>

#include <atomic>
#include <cerrno>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/support/name_server.h"
#include "tests/support/scoped_netns.h"
#include "tests/support/test_datapath.h"

namespace sockmesh::testing {
namespace {

using model::LbAlgorithm;
using model::Protocol;

// Backends with their names, started on distinct loopback addresses.
class Backends {
 public:
  void Start(const std::vector<std::string>& ips, NameServer::Kind kind = NameServer::Kind::kTcp) {
    for (const std::string& ip : ips) {
      std::string name = absl::StrCat("be-", servers_.size());
      auto s = NameServer::Start(name, kind, ip);
      ASSERT_TRUE(s.ok()) << s.status();
      servers_.push_back(*std::move(s));
    }
  }
  std::vector<model::Backend> Model(std::vector<uint32_t> weights = {}) const {
    std::vector<model::Backend> out;
    for (size_t i = 0; i < servers_.size(); ++i) {
      out.push_back(
          MakeBackend(servers_[i]->ip(), servers_[i]->port(), weights.empty() ? 1 : weights[i]));
    }
    return out;
  }
  const NameServer& operator[](size_t i) const { return *servers_[i]; }
  size_t size() const { return servers_.size(); }

 private:
  std::vector<std::unique_ptr<NameServer>> servers_;
};

class SockLbTest : public ::testing::Test {
 protected:
  void SetUp() override { StartDatapath(); }

  void StartDatapath(uint32_t table_size = 1021, agent::MapSizes sizes = {}) {
    dp_.reset();
    auto dp = TestDatapath::Create(table_size, sizes);
    ASSERT_TRUE(dp.ok()) << "cannot attach the datapath (needs root, BPF, cgroup v2): "
                         << dp.status();
    dp_ = *std::move(dp);
  }

  void Apply(const model::DesiredState& state) {
    agent::SyncReport r = dp_->Apply(state);
    ASSERT_EQ(r.failed, 0) << r.Summary() << ": " << (r.errors.empty() ? "" : r.errors[0]);
  }

  // Dials `n` times and counts replies by backend name; fails the test on any error.
  std::map<std::string, int> DialMany(const std::string& vip, uint16_t port, int n) {
    std::map<std::string, int> seen;
    for (int i = 0; i < n; ++i) {
      DialResult r = DialTcp(vip, port);
      EXPECT_EQ(r.error, 0) << "dial " << i << ": " << strerror(r.error);
      if (r.error) break;
      seen[r.reply]++;
    }
    return seen;
  }

  std::unique_ptr<TestDatapath> dp_;
};

TEST_F(SockLbTest, TcpConnectToVipReachesEveryBackendAndGetpeernameShowsVip) {
  Backends be;
  be.Start({"127.0.0.21", "127.0.0.22", "127.0.0.23"});
  model::DesiredState state;
  AddService(state, MakeService("127.10.1.1", 80, Protocol::kTcp, be.Model()));
  Apply(state);

  std::map<std::string, int> seen = DialMany("127.10.1.1", 80, 300);
  ASSERT_EQ(seen.size(), 3u);
  for (const auto& [name, count] : seen) EXPECT_GT(count, 50) << name;  // expected 100 each

  DialResult r = DialTcp("127.10.1.1", 80);
  ASSERT_EQ(r.error, 0);
  EXPECT_EQ(r.peer, "127.10.1.1:80") << "the application must see the address it dialed";
  EXPECT_GE(dp_->Counter(SM_CNT_CONNECT_XLATE), 301u);
  EXPECT_GE(dp_->Counter(SM_CNT_PEERNAME_REVNAT), 1u);
  // Connected sockets keep the VIP in socket-local storage, not in the LRU reverse map, so heavy
  // connection churn cannot evict the VIP of a long-lived connection.
  auto revnat = dp_->datapath().maps().revnat.Dump();
  ASSERT_TRUE(revnat.ok());
  EXPECT_EQ(revnat->size(), 0u);
}

TEST_F(SockLbTest, WeightedRandomSplitMatchesWeights) {
  Backends be;
  be.Start({"127.0.0.21", "127.0.0.22"});
  model::DesiredState state;
  AddService(state, MakeService("127.10.1.2", 80, Protocol::kTcp, be.Model({1, 3})));
  Apply(state);

  constexpr int kDials = 2000;
  std::map<std::string, int> seen = DialMany("127.10.1.2", 80, kDials);
  double heavy = static_cast<double>(seen[be[1].name()]) / kDials;
  // Binomial sd = sqrt(.75 * .25 / 2000) ~ 0.0097: 0.04 is four sd.
  EXPECT_NEAR(heavy, 0.75, 0.04) << "light=" << seen[be[0].name()]
                                 << " heavy=" << seen[be[1].name()];
}

TEST_F(SockLbTest, UdpSendmsgReachesBackendAndReplyComesFromVip) {
  Backends be;
  be.Start({"127.0.0.21", "127.0.0.22"}, NameServer::Kind::kUdp);
  model::DesiredState state;
  AddService(state, MakeService("127.10.1.3", 53, Protocol::kUdp, be.Model()));
  Apply(state);

  std::set<std::string> names;
  for (int i = 0; i < 100; ++i) {
    DialResult r = DialUdp("127.10.1.3", 53);
    ASSERT_EQ(r.error, 0) << strerror(r.error);
    EXPECT_EQ(r.peer, "127.10.1.3:53") << "recvmsg must report the VIP as the source";
    names.insert(r.reply);
  }
  EXPECT_EQ(names.size(), 2u);
  EXPECT_GE(dp_->Counter(SM_CNT_SENDMSG_XLATE), 100u);
  EXPECT_GE(dp_->Counter(SM_CNT_RECVMSG_REVNAT), 100u);

  // A connected UDP socket goes through connect(), and its replies still show the VIP.
  DialResult c = DialUdp("127.10.1.3", 53, "ping", 3000, /*connected=*/true);
  ASSERT_EQ(c.error, 0) << strerror(c.error);
  EXPECT_EQ(c.peer, "127.10.1.3:53");
}

TEST_F(SockLbTest, ServiceWithoutBackendsIsRefusedWithEconnrefused) {
  model::DesiredState state;
  AddService(state, MakeService("127.10.1.4", 80, Protocol::kTcp, {}));
  AddService(state, MakeService("127.10.1.4", 53, Protocol::kUdp, {}));
  Apply(state);

  uint64_t before = dp_->Counter(SM_CNT_NO_BACKEND);
  EXPECT_EQ(DialTcp("127.10.1.4", 80).error, ECONNREFUSED);
  EXPECT_EQ(DialUdp("127.10.1.4", 53).error, ECONNREFUSED);
  EXPECT_EQ(dp_->Counter(SM_CNT_NO_BACKEND), before + 2);
}

TEST_F(SockLbTest, TrafficThatIsNotAServiceIsLeftAlone) {
  Backends be;
  be.Start({"127.0.0.21", "127.0.0.31"});
  model::DesiredState state;
  AddService(state, MakeService("127.10.1.5", 80, Protocol::kTcp, {be.Model()[0]}));
  Apply(state);

  // A plain destination: reached as dialed, and getpeername is untouched.
  DialResult direct = DialTcp(be[1].ip(), be[1].port());
  ASSERT_EQ(direct.error, 0);
  EXPECT_EQ(direct.reply, be[1].name());
  EXPECT_EQ(direct.peer, absl::StrCat(be[1].ip(), ":", be[1].port()));
  // The VIP on another port, or with another protocol, is not the service.
  EXPECT_EQ(DialTcp("127.10.1.5", 81).error, ECONNREFUSED);
  // Unconnected UDP never learns of the ICMP error: no answer is the only outcome.
  EXPECT_EQ(DialUdp("127.10.1.5", 80, "x", 300).error, ETIMEDOUT);
  EXPECT_EQ(dp_->Counter(SM_CNT_CONNECT_XLATE), 0u);
  EXPECT_EQ(dp_->Counter(SM_CNT_SENDMSG_XLATE), 0u);
}

TEST_F(SockLbTest, Ipv6VipBalancesTcpAndUdpInPrivateNamespace) {
  auto ns = ScopedNetns::Enter();
  ASSERT_TRUE(ns.ok()) << ns.status();
  Backends tcp, udp;
  tcp.Start({"::1", "::1"});
  udp.Start({"::1", "::1"}, NameServer::Kind::kUdp);
  model::DesiredState state;
  AddService(state, MakeService("fd00:10::10", 80, Protocol::kTcp, tcp.Model()));
  AddService(state, MakeService("fd00:10::10", 53, Protocol::kUdp, udp.Model()));
  Apply(state);

  std::map<std::string, int> seen = DialMany("fd00:10::10", 80, 100);
  EXPECT_EQ(seen.size(), 2u);
  DialResult r = DialTcp("fd00:10::10", 80);
  ASSERT_EQ(r.error, 0);
  EXPECT_EQ(r.peer, "[fd00:10::10]:80");
  DialResult u = DialUdp("fd00:10::10", 53);
  ASSERT_EQ(u.error, 0) << strerror(u.error);
  EXPECT_EQ(u.peer, "[fd00:10::10]:53");
}

TEST_F(SockLbTest, DualStackSocketDialingV4MappedVipReachesIpv4Service) {
  Backends be;
  be.Start({"127.0.0.21"});
  model::DesiredState state;
  AddService(state, MakeService("127.10.1.6", 80, Protocol::kTcp, be.Model()));
  Apply(state);

  DialResult r = DialTcp("::ffff:127.10.1.6", 80);
  ASSERT_EQ(r.error, 0) << strerror(r.error);
  EXPECT_EQ(r.reply, be[0].name());
  EXPECT_EQ(r.peer, "[::ffff:127.10.1.6]:80");
}

TEST_F(SockLbTest, MaglevKeepsEachClientOnItsBackendAndRemovalMovesAboutOneNth) {
  Backends be;
  be.Start({"127.0.0.21", "127.0.0.22", "127.0.0.23", "127.0.0.24", "127.0.0.25"});
  model::DesiredState state;
  AddService(state,
             MakeService("127.10.1.7", 80, Protocol::kTcp, be.Model(), LbAlgorithm::kMaglev));
  Apply(state);

  // The Maglev key of a socket with a bound source is (source address, source port).
  constexpr int kClients = 300;
  auto dial_from = [&](int i) {
    // A source address of its own: on 127.0.0.1 other traffic's TIME_WAIT sockets hold ports.
    DialResult r = DialTcp("127.10.1.7", 80, "127.77.0.1", static_cast<uint16_t>(47000 + i));
    EXPECT_EQ(r.error, 0) << "client " << i << ": " << strerror(r.error);
    return r.reply;
  };
  std::vector<std::string> first(kClients);
  std::set<std::string> used;
  for (int i = 0; i < kClients; ++i) {
    first[i] = dial_from(i);
    used.insert(first[i]);
    ASSERT_EQ(dial_from(i), first[i]) << "client " << i << " moved without any change";
  }
  EXPECT_EQ(used.size(), 5u);

  const std::string removed = be[2].name();
  std::vector<model::Backend> rest = be.Model();
  rest.erase(rest.begin() + 2);
  state.begin()->second.backends = rest;
  Apply(state);

  int moved_survivors = 0, on_removed = 0;
  for (int i = 0; i < kClients; ++i) {
    std::string now = dial_from(i);
    EXPECT_NE(now, removed);
    if (first[i] == removed) {
      ++on_removed;
    } else if (now != first[i]) {
      ++moved_survivors;
    }
  }
  // Clients of the removed backend must move; about 1/5 of all. Maglev moves few of the others.
  EXPECT_GT(on_removed, kClients / 10);
  EXPECT_LT(on_removed, kClients * 3 / 10);
  EXPECT_LE(moved_survivors, kClients / 20) << "Maglev should keep surviving clients in place";
}

TEST_F(SockLbTest, ClientIpAffinityPinsTheClientUntilTimeoutOrBackendRemoval) {
  Backends be;
  be.Start({"127.0.0.21", "127.0.0.22", "127.0.0.23", "127.0.0.24"});
  model::ServiceEntry svc = MakeService("127.10.1.8", 80, Protocol::kTcp, be.Model());
  svc.affinity = model::SessionAffinity::kClientIP;
  svc.affinity_timeout_seconds = 1;
  model::DesiredState state;
  AddService(state, svc);
  Apply(state);

  std::map<std::string, int> seen = DialMany("127.10.1.8", 80, 50);
  ASSERT_EQ(seen.size(), 1u) << "every connect of one client must reach one backend";
  EXPECT_GE(dp_->Counter(SM_CNT_AFFINITY_HIT), 49u);

  // After the timeout the entry is stale and a fresh choice is made.
  uint64_t stale = dp_->Counter(SM_CNT_AFFINITY_STALE);
  std::this_thread::sleep_for(std::chrono::milliseconds(1300));
  ASSERT_EQ(DialTcp("127.10.1.8", 80).error, 0);
  EXPECT_EQ(dp_->Counter(SM_CNT_AFFINITY_STALE), stale + 1);

  // Removing the pinned backend moves the client, and it stays on its new backend.
  std::string pinned = DialTcp("127.10.1.8", 80).reply;
  std::vector<model::Backend> rest;
  for (size_t i = 0; i < be.size(); ++i) {
    if (be[i].name() != pinned) rest.push_back(be.Model()[i]);
  }
  state.begin()->second.backends = rest;
  Apply(state);
  seen = DialMany("127.10.1.8", 80, 20);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_NE(seen.begin()->first, pinned);
}

// Replacing a backend set must never expose a half-written or empty set: 1,000 swaps while clients
// connect, zero failures, every answer from a backend of the old or the new set.
TEST_F(SockLbTest, ThousandBackendSetSwapsUnderLoadLoseNoConnection) {
  Backends be;
  be.Start({"127.0.0.21", "127.0.0.22", "127.0.0.23", "127.0.0.24", "127.0.0.25"});
  std::vector<model::Backend> all = be.Model();
  // Alternate between sets of different sizes and algorithms so LUT sizes differ too.
  model::ServiceEntry a = MakeService("127.10.1.9", 80, Protocol::kTcp, {all[0], all[1]});
  model::ServiceEntry b = MakeService("127.10.1.9", 80, Protocol::kTcp, {all[2], all[3], all[4]});
  b.backends[0].weight = 5;  // weighted: a full-size selection table
  model::ServiceEntry c =
      MakeService("127.10.1.9", 80, Protocol::kTcp, {all[1], all[3]}, LbAlgorithm::kMaglev);
  std::vector<model::DesiredState> states(3);
  AddService(states[0], a);
  AddService(states[1], b);
  AddService(states[2], c);
  Apply(states[0]);

  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, failed{0}, foreign{0};
  std::set<std::string> names;
  for (size_t i = 0; i < be.size(); ++i) names.insert(be[i].name());
  auto client = [&] {
    while (!stop.load()) {
      DialResult r = DialTcp("127.10.1.9", 80);
      if (r.error) {
        failed++;
      } else if (!names.contains(r.reply)) {
        foreign++;
      } else {
        ok++;
      }
    }
  };
  std::vector<std::thread> clients;
  for (int i = 0; i < 2; ++i) clients.emplace_back(client);
  for (int swap = 1; swap <= 1000; ++swap) {
    agent::SyncReport r = dp_->Apply(states[swap % 3]);
    ASSERT_EQ(r.updated, 1) << "swap " << swap << ": " << r.Summary();
  }
  // Keep the load on briefly after the last swap so late connects are counted too.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  stop = true;
  for (auto& t : clients) t.join();

  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(foreign.load(), 0);
  EXPECT_GT(ok.load(), 1000) << "the load must overlap the swaps";
  EXPECT_EQ(dp_->Counter(SM_CNT_INCONSISTENT), 0u);
  RecordProperty("connects", ok.load());
  RecordProperty("retries_after_swap", static_cast<int>(dp_->Counter(SM_CNT_REV_RETRY)));
}

// A full map loses nothing: the service that does not fit reports an error naming the map, and
// the previous backend set of a service whose update does not fit stays in force.
TEST_F(SockLbTest, FullMapRejectsTheUpdateAndKeepsTheLastGoodSet) {
  StartDatapath(/*table_size=*/251, agent::MapSizes{.lut = 64});
  Backends be;
  be.Start({"127.0.0.21", "127.0.0.22"});
  std::vector<model::Backend> all = be.Model();
  model::DesiredState state;
  AddService(state, MakeService("127.10.1.10", 80, Protocol::kTcp, {all[0]}));
  Apply(state);

  // Weighted 1:2 needs 251 slots; the LUT map holds 64.
  state.begin()->second.backends = be.Model({1, 2});
  agent::SyncReport r = dp_->Apply(state);
  ASSERT_EQ(r.failed, 1);
  EXPECT_NE(r.errors[0].find("sm_lut_v1"), std::string::npos) << r.errors[0];
  EXPECT_NE(r.errors[0].find("127.10.1.10:80/TCP"), std::string::npos) << r.errors[0];
  EXPECT_NE(r.errors[0].find("previous backend set stays in force"), std::string::npos);

  std::map<std::string, int> seen = DialMany("127.10.1.10", 80, 30);
  EXPECT_EQ(seen, (std::map<std::string, int>{{be[0].name(), 30}}));
  // The rolled-back revision left nothing behind: only the live revision's single slot remains.
  auto lut = dp_->datapath().maps().lut.Dump();
  ASSERT_TRUE(lut.ok());
  EXPECT_EQ(lut->size(), 1u);

  // A new service that does not fit is refused alone; one that fits still applies.
  AddService(state, MakeService("127.10.1.11", 80, Protocol::kTcp, be.Model({1, 2})));
  AddService(state, MakeService("127.10.1.12", 80, Protocol::kTcp, {all[1]}));
  state.find(model::Frontend{.vip = *model::IpAddress::Parse("127.10.1.10"), .port = 80})
      ->second.backends = {all[0]};
  r = dp_->Apply(state);
  EXPECT_EQ(r.failed, 1) << r.Summary();
  EXPECT_EQ(DialTcp("127.10.1.12", 80).reply, be[1].name());
  EXPECT_EQ(DialTcp("127.10.1.11", 80).error, ECONNREFUSED) << "not a service: no listener";
}

}  // namespace
}  // namespace sockmesh::testing
