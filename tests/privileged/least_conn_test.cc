// SPDX-License-Identifier: Apache-2.0
// Least-connections and the per-backend connection limit with real TCP connections through the
// real hooks (connect4 + sock_release) in a throwaway cgroup. Connections are held open by the
// client: a socket counts against its backend from connect() until it is closed. Every test ends
// by closing everything and reading sm_be_conns_v1 back to zero. VIPs are in 127.10.9.0/24,
// backends on 127.0.9.x.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/support/name_server.h"
#include "tests/support/test_datapath.h"
#include "userspace/agent/abi_conversion.h"
#include "userspace/sys/unique_fd.h"

namespace sockmesh::testing {
namespace {

using model::LbAlgorithm;
using model::Protocol;

// A client connection kept open: which backend answered (its name), or the connect's errno.
struct HeldConn {
  sys::UniqueFd fd;
  std::string backend;
  int error = 0;
};

sockaddr_in Addr(const std::string& ip, uint16_t port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  inet_pton(AF_INET, ip.c_str(), &sa.sin_addr);
  return sa;
}

// Reads the server's name until EOF (NameServer writes it and closes its side).
std::string ReadName(int fd) {
  std::string name;
  char buf[64];
  for (;;) {
    pollfd p{.fd = fd, .events = POLLIN, .revents = 0};
    if (poll(&p, 1, 3000) != 1) return name + "(timeout)";
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) return name;
    name.append(buf, static_cast<size_t>(n));
  }
}

// connect() to ip:port on a fresh socket and keep the socket open.
HeldConn Hold(const std::string& ip, uint16_t port) {
  HeldConn c;
  c.fd = sys::UniqueFd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in sa = Addr(ip, port);
  if (connect(c.fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
    c.error = errno;
    return c;
  }
  c.backend = ReadName(c.fd.get());
  return c;
}

class LeastConnTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dp = TestDatapath::Create();
    ASSERT_TRUE(dp.ok()) << "cannot attach the datapath (needs root, BPF, cgroup v2 and "
                            "cgroup/sock_release): "
                         << dp.status();
    dp_ = *std::move(dp);
  }

  void StartBackends(int n) {
    for (int i = 0; i < n; ++i) {
      auto s = NameServer::Start(absl::StrCat("be-", i), NameServer::Kind::kTcp,
                                 absl::StrCat("127.0.9.", i + 1));
      ASSERT_TRUE(s.ok()) << s.status();
      servers_.push_back(*std::move(s));
    }
  }

  std::vector<model::Backend> Model() const {
    std::vector<model::Backend> out;
    for (const auto& s : servers_) out.push_back(MakeBackend(s->ip(), s->port()));
    return out;
  }

  void Apply(const model::ServiceEntry& entry) {
    AddService(state_, entry);
    agent::SyncReport r = dp_->Apply(state_);
    ASSERT_EQ(r.failed, 0) << r.Summary() << ": " << (r.errors.empty() ? "" : r.errors[0]);
  }

  static model::ServiceEntry Limited(model::ServiceEntry e, uint32_t limit) {
    e.max_connections_per_backend = limit;
    return e;
  }

  // sm_be_conns_v1 as "ip:port" -> count, for entries that are not zero.
  std::map<std::string, uint64_t> KernelCounts() {
    std::map<std::string, uint64_t> out;
    agent::DatapathMaps& m = dp_->datapath().maps();
    auto conns = m.conns.Dump();
    auto backends = m.backends.Dump();
    EXPECT_TRUE(conns.ok() && backends.ok());
    if (!conns.ok() || !backends.ok()) return out;
    std::map<std::pair<uint32_t, uint32_t>, std::string> names;
    for (const auto& [key, be] : *backends) {
      absl::StatusOr<model::Backend> b = agent::FromAbiBackend(be);
      if (b.ok()) names[{key.svc_id, key.backend_id}] = b->ToString();
    }
    for (const auto& [key, count] : *conns) {
      if (count == 0) continue;
      auto it = names.find({key.svc_id, key.backend_id});
      out[it == names.end() ? absl::StrCat("svc", key.svc_id, "/be", key.backend_id)
                            : it->second] += count;
    }
    return out;
  }

  std::string Name(int i) const { return servers_[static_cast<size_t>(i)]->name(); }
  std::string Key(int i) const {
    return MakeBackend(servers_[static_cast<size_t>(i)]->ip(),
                       servers_[static_cast<size_t>(i)]->port())
        .ToString();
  }

  std::unique_ptr<TestDatapath> dp_;
  std::vector<std::unique_ptr<NameServer>> servers_;
  model::DesiredState state_;
};

std::map<std::string, int> ByBackend(const std::vector<HeldConn>& conns) {
  std::map<std::string, int> out;
  for (const HeldConn& c : conns) out[c.backend]++;
  return out;
}

TEST_F(LeastConnTest, SpreadsHeldConnectionsEvenlyAndCountsReturnToZero) {
  ASSERT_NO_FATAL_FAILURE(StartBackends(3));
  ASSERT_NO_FATAL_FAILURE(Apply(
      MakeService("127.10.9.1", 80, Protocol::kTcp, Model(), LbAlgorithm::kLeastConnections)));
  std::vector<HeldConn> held;
  for (int i = 0; i < 30; ++i) {
    held.push_back(Hold("127.10.9.1", 80));
    ASSERT_EQ(held.back().error, 0) << "connect " << i << ": " << strerror(held.back().error);
  }
  EXPECT_EQ(ByBackend(held),
            (std::map<std::string, int>{{Name(0), 10}, {Name(1), 10}, {Name(2), 10}}));
  EXPECT_EQ(KernelCounts(),
            (std::map<std::string, uint64_t>{{Key(0), 10}, {Key(1), 10}, {Key(2), 10}}));
  held.clear();
  EXPECT_TRUE(KernelCounts().empty()) << "every close must give its count back";
}

TEST_F(LeastConnTest, SteersNewConnectionsAwayFromABackendHoldingLongConnections) {
  ASSERT_NO_FATAL_FAILURE(StartBackends(3));
  ASSERT_NO_FATAL_FAILURE(Apply(
      MakeService("127.10.9.2", 80, Protocol::kTcp, Model(), LbAlgorithm::kLeastConnections)));
  // Nine connections, three per backend; keep only backend 0's open: it holds three long ones.
  std::vector<HeldConn> all;
  for (int i = 0; i < 9; ++i) all.push_back(Hold("127.10.9.2", 80));
  std::vector<HeldConn> long_lived;
  for (HeldConn& c : all) {
    ASSERT_EQ(c.error, 0) << strerror(c.error);
    if (c.backend == Name(0)) long_lived.push_back(std::move(c));
  }
  all.clear();
  ASSERT_EQ(long_lived.size(), 3u);
  ASSERT_EQ(KernelCounts(), (std::map<std::string, uint64_t>{{Key(0), 3}}));

  // Short requests (connect, read, close) never find backend 0 least loaded.
  std::map<std::string, int> seen;
  for (int i = 0; i < 40; ++i) {
    DialResult r = DialTcp("127.10.9.2", 80);
    ASSERT_EQ(r.error, 0) << strerror(r.error);
    seen[r.reply]++;
  }
  EXPECT_EQ(seen.count(Name(0)), 0u) << "backend 0 holds 3 connections, the others at most 1";
  EXPECT_GT(seen[Name(1)], 5) << "ties between the idle backends are broken at random";
  EXPECT_GT(seen[Name(2)], 5);
  long_lived.clear();
  EXPECT_TRUE(KernelCounts().empty());
}

TEST_F(LeastConnTest, LimitRefusesTheSeventhConnectionFastAndAdmitsOneAfterAClose) {
  ASSERT_NO_FATAL_FAILURE(StartBackends(3));
  // Random selection: the breaker moves a connect off a full backend onto the least loaded one.
  ASSERT_NO_FATAL_FAILURE(
      Apply(Limited(MakeService("127.10.9.3", 80, Protocol::kTcp, Model()), 2)));
  std::vector<HeldConn> held;
  for (int i = 0; i < 6; ++i) {
    held.push_back(Hold("127.10.9.3", 80));
    ASSERT_EQ(held.back().error, 0) << "connect " << i << ": " << strerror(held.back().error);
  }
  EXPECT_EQ(ByBackend(held),
            (std::map<std::string, int>{{Name(0), 2}, {Name(1), 2}, {Name(2), 2}}));

  uint64_t refused_before = dp_->Counter(SM_CNT_CONN_LIMIT);
  auto start = std::chrono::steady_clock::now();
  HeldConn seventh = Hold("127.10.9.3", 80);
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(seventh.error, ECONNREFUSED) << strerror(seventh.error);
  EXPECT_LT(took, std::chrono::milliseconds(500)) << "refused in the hook, not by a timeout";
  EXPECT_EQ(dp_->Counter(SM_CNT_CONN_LIMIT), refused_before + 1);
  seventh = HeldConn{};

  // Free a slot on backend 1: the next connect must land exactly there.
  std::string freed;
  for (HeldConn& c : held) {
    if (c.backend == Name(1)) {
      freed = c.backend;
      c = HeldConn{};
      break;
    }
  }
  HeldConn next = Hold("127.10.9.3", 80);
  ASSERT_EQ(next.error, 0) << strerror(next.error);
  EXPECT_EQ(next.backend, freed);
  EXPECT_EQ(KernelCounts(),
            (std::map<std::string, uint64_t>{{Key(0), 2}, {Key(1), 2}, {Key(2), 2}}));
  held.clear();
  next = HeldConn{};
  EXPECT_TRUE(KernelCounts().empty());
}

// Racing connects from many threads: the count is taken before it is checked, so no backend ever
// holds more than the limit, and every refusal leaves the counts exact.
TEST_F(LeastConnTest, ConcurrentConnectsNeverExceedTheLimit) {
  ASSERT_NO_FATAL_FAILURE(StartBackends(3));
  ASSERT_NO_FATAL_FAILURE(
      Apply(Limited(MakeService("127.10.9.9", 80, Protocol::kTcp, Model()), 2)));
  constexpr int kThreads = 8;
  constexpr int kAttempts = 10;
  std::mutex mu;
  std::vector<HeldConn> held;
  int refused = 0;
  int other_errors = 0;
  uint64_t counter_before = dp_->Counter(SM_CNT_CONN_LIMIT);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kAttempts; ++i) {
        HeldConn c = Hold("127.10.9.9", 80);
        std::lock_guard<std::mutex> lock(mu);
        if (c.error == 0) {
          held.push_back(std::move(c));
        } else if (c.error == ECONNREFUSED) {
          ++refused;
        } else {
          ++other_errors;
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(other_errors, 0);
  EXPECT_LE(held.size(), 6u);
  EXPECT_EQ(held.size() + static_cast<size_t>(refused), size_t{kThreads * kAttempts});
  EXPECT_EQ(dp_->Counter(SM_CNT_CONN_LIMIT), counter_before + static_cast<uint64_t>(refused));
  std::map<std::string, uint64_t> want;
  for (const HeldConn& c : held) {
    for (int i = 0; i < 3; ++i) {
      if (c.backend == Name(i)) want[Key(i)]++;
    }
  }
  for (const auto& [backend, count] : want) EXPECT_LE(count, 2u) << backend;
  EXPECT_EQ(KernelCounts(), want);
  held.clear();
  EXPECT_TRUE(KernelCounts().empty());
}

TEST_F(LeastConnTest, LimitAppliesToMaglevAndToLeastConnections) {
  ASSERT_NO_FATAL_FAILURE(StartBackends(2));
  ASSERT_NO_FATAL_FAILURE(Apply(
      Limited(MakeService("127.10.9.4", 80, Protocol::kTcp, Model(), LbAlgorithm::kMaglev), 3)));
  ASSERT_NO_FATAL_FAILURE(Apply(Limited(
      MakeService("127.10.9.5", 80, Protocol::kTcp, Model(), LbAlgorithm::kLeastConnections), 1)));
  std::vector<HeldConn> held;
  for (int i = 0; i < 6; ++i) {
    held.push_back(Hold("127.10.9.4", 80));
    ASSERT_EQ(held.back().error, 0) << "maglev connect " << i;
  }
  EXPECT_EQ(ByBackend(held), (std::map<std::string, int>{{Name(0), 3}, {Name(1), 3}}));
  EXPECT_EQ(Hold("127.10.9.4", 80).error, ECONNREFUSED);
  for (int i = 0; i < 2; ++i) {
    held.push_back(Hold("127.10.9.5", 80));
    ASSERT_EQ(held.back().error, 0) << "least-connections connect " << i;
  }
  EXPECT_EQ(Hold("127.10.9.5", 80).error, ECONNREFUSED);
  held.clear();
  EXPECT_TRUE(KernelCounts().empty());
}

TEST_F(LeastConnTest, RefusedReconnectedAndAbandonedSocketsLeaveNoCount) {
  ASSERT_NO_FATAL_FAILURE(StartBackends(1));
  // A backend address where nothing listens: the kernel's TCP refuses, not the hook.
  ASSERT_NO_FATAL_FAILURE(
      Apply(MakeService("127.10.9.6", 80, Protocol::kTcp, {MakeBackend("127.0.9.9", 9)},
                        LbAlgorithm::kLeastConnections)));
  ASSERT_NO_FATAL_FAILURE(Apply(
      MakeService("127.10.9.7", 80, Protocol::kTcp, Model(), LbAlgorithm::kLeastConnections)));

  // Refused by the backend, then connect()ed again on the same socket to a live service.
  sys::UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in dead = Addr("127.10.9.6", 80);
  ASSERT_NE(connect(fd.get(), reinterpret_cast<sockaddr*>(&dead), sizeof(dead)), 0);
  EXPECT_EQ(errno, ECONNREFUSED);
  EXPECT_EQ(KernelCounts(),
            (std::map<std::string, uint64_t>{{MakeBackend("127.0.9.9", 9).ToString(), 1}}))
      << "a socket counts until it is closed or connects again";
  sockaddr_in live = Addr("127.10.9.7", 80);
  ASSERT_EQ(connect(fd.get(), reinterpret_cast<sockaddr*>(&live), sizeof(live)), 0)
      << strerror(errno);
  EXPECT_EQ(KernelCounts(), (std::map<std::string, uint64_t>{{Key(0), 1}}));
  // AF_UNSPEC dissolves the connection; connecting again must not count twice.
  sockaddr unspec{};
  unspec.sa_family = AF_UNSPEC;
  ASSERT_EQ(connect(fd.get(), &unspec, sizeof(unspec)), 0) << strerror(errno);
  ASSERT_EQ(connect(fd.get(), reinterpret_cast<sockaddr*>(&live), sizeof(live)), 0)
      << strerror(errno);
  EXPECT_EQ(KernelCounts(), (std::map<std::string, uint64_t>{{Key(0), 1}}));
  fd = sys::UniqueFd();

  // Closed while the handshake may still be in flight.
  for (int i = 0; i < 50; ++i) {
    sys::UniqueFd nb(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    int rc = connect(nb.get(), reinterpret_cast<sockaddr*>(&live), sizeof(live));
    ASSERT_TRUE(rc == 0 || errno == EINPROGRESS) << strerror(errno);
  }
  EXPECT_TRUE(KernelCounts().empty());
}

TEST_F(LeastConnTest, CountsSurviveAnAgentRestartThatAdoptsThePins) {
  ASSERT_NO_FATAL_FAILURE(StartBackends(2));
  ASSERT_NO_FATAL_FAILURE(Apply(
      MakeService("127.10.9.8", 80, Protocol::kTcp, Model(), LbAlgorithm::kLeastConnections)));
  std::vector<HeldConn> held;
  for (int i = 0; i < 4; ++i) held.push_back(Hold("127.10.9.8", 80));
  // What a restarted agent does: load the programs again, reuse the pinned maps, and swap the new
  // programs into the pinned links (sock_release included).
  {
    auto again = agent::Datapath::Start(agent::DatapathOptions{.bpffs_root = dp_->bpffs_root(),
                                                               .instance = dp_->instance(),
                                                               .cgroup_path = dp_->cgroup_path()});
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_FALSE((*again)->report().adopted.empty());
  }
  EXPECT_EQ(KernelCounts(), (std::map<std::string, uint64_t>{{Key(0), 2}, {Key(1), 2}}));
  held.push_back(Hold("127.10.9.8", 80));
  held.push_back(Hold("127.10.9.8", 80));
  EXPECT_EQ(ByBackend(held), (std::map<std::string, int>{{Name(0), 3}, {Name(1), 3}}));
  held.clear();
  EXPECT_TRUE(KernelCounts().empty()) << "sockets from before the restart gave their counts back";
}

}  // namespace
}  // namespace sockmesh::testing
