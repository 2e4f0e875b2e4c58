// SPDX-License-Identifier: Apache-2.0
// sockmesh-policy-bench: what authorization policy costs new connections, with 0, 100 and 10,000
// policies in force, each as a ratio to 0 in the same run.
//
// The real datapath runs in-process (TestDatapath) on a throwaway cgroup with two workload cgroups
// below it: "payment" owns the listener (so the destination-side ingress check runs) and "client"
// dials it (so connect() is decided with the client's identity). With N > 0 policies, policy 1
// selects payment and allows the client on the listener's port, and policies 2..N each select
// another (remote, trafficless) workload with two ALLOW rows for other sources: the kernel holds
// N endpoints and 2N rows, and every connect is evaluated on both sides. With 0, payment is
// selected by nothing: both hooks pay only the endpoint lookup that misses.
//
// Rounds alternate 0 / 100 / 10,000 so that drift on a shared machine affects each alike; the
// policy is swapped in through PolicySync before a round (not timed). A connection is socket() +
// connect() + close() with SO_LINGER 0. Traffic stays on 127.0.0.0/8.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/accept_close_server.h"
#include "bench/median.h"
#include "tests/support/policy_builder.h"
#include "tests/support/test_datapath.h"
#include "userspace/agent/abi_conversion.h"
#include "userspace/agent/cgroup.h"
#include "userspace/agent/policy_sync.h"
#include "userspace/agent/workload_cgroup.h"
#include "userspace/sys/unique_fd.h"

namespace sockmesh::bench {
namespace {

constexpr char kServerIp[] = "127.0.42.1";
constexpr uint32_t kClientIdentity = 300;

// N policies as the compiler would emit them (see the file comment).
v1::CompiledPolicy SyntheticPolicy(int n, uint16_t port) {
  testing::CompiledPolicyBuilder b;
  if (n == 0) return b.Build();
  b.Policy(1, "shop", "payment-allow-client", v1::POLICY_ACTION_ALLOW)
      .Set(1, true)
      .Row(kClientIdentity, port, {.allow = 1})
      .Endpoint(1, "shop", "payment", {kServerIp}, 1);
  for (int i = 2; i <= n; ++i) {
    const uint32_t id = static_cast<uint32_t>(i);
    b.Policy(id, "shop", absl::StrCat("allow-", i), v1::POLICY_ACTION_ALLOW)
        .Set(id, true)
        .Row(1000 + id, 8080, {.allow = id})
        .Row(1000 + id + 1, testing::kAnyPort, {.allow = id})
        .Endpoint(id, "shop", absl::StrCat("svc-", i),
                  {absl::StrFormat("10.200.%d.%d", i / 250, i % 250 + 1)}, id);
  }
  return b.Build();
}

bool ConnectOnce(const sockaddr_in& addr) {
  sys::UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return false;
  linger lg{.l_onoff = 1, .l_linger = 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
  return ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0;
}

// Connections per second over `duration`; failures are counted into `failed`.
double Measure(const sockaddr_in& addr, absl::Duration duration, uint64_t& failed) {
  uint64_t ok = 0;
  const absl::Time start = absl::Now();
  const absl::Time end = start + duration;
  while (absl::Now() < end) {
    for (int i = 0; i < 64; ++i) {
      if (ConnectOnce(addr)) {
        ++ok;
      } else {
        ++failed;
      }
    }
  }
  return static_cast<double>(ok) / absl::ToDoubleSeconds(absl::Now() - start);
}

int Run(int rounds, double seconds, const std::vector<int>& counts) {
  auto dp = testing::TestDatapath::Create();
  if (!dp.ok()) {
    std::fprintf(stderr, "policy-bench: %s\n", std::string(dp.status().message()).c_str());
    return 1;
  }
  const std::string mesh = (*dp)->cgroup_path();
  const std::string client = agent::WorkloadCgroupPath(mesh, {"shop", "client"});
  const std::string payment = agent::WorkloadCgroupPath(mesh, {"shop", "payment"});
  int rc = 0;
  {
    for (const std::string& p : {client, payment}) {
      if (!agent::EnsureCgroup(p).ok()) return 1;
    }
    agent::DatapathMaps& m = (*dp)->datapath().maps();
    (void)m.cgroup_identity.Update(*agent::CgroupId(client),
                                   agent::ToAbiIdentity(kClientIdentity, true));
    auto sync = agent::PolicySync::Recover(agent::PolicyMaps{.rows = &m.policy_rows,
                                                             .ips = &m.ip_policy_endpoint,
                                                             .cgroups = &m.cgroup_policy_endpoint});
    if (!sync.ok()) return 1;

    (void)agent::JoinCgroup(payment, ::getpid());
    auto server = AcceptCloseServer::Start({.ips = {kServerIp}, .threads = 1});
    if (!server.ok()) {
      std::fprintf(stderr, "policy-bench: %s\n", std::string(server.status().message()).c_str());
      rc = 1;
    } else {
      (void)agent::JoinCgroup(client, ::getpid());
      const sockaddr_in addr = (*server)->addresses().front();
      const uint16_t port = ntohs(addr.sin_port);
      std::map<int, v1::CompiledPolicy> policies;
      for (int n : counts) policies[n] = SyntheticPolicy(n, port);
      auto local = agent::ListWorkloadCgroups(mesh);
      std::map<int, std::vector<double>> rates;
      uint64_t failed = 0;
      for (int r = 0; r < rounds; ++r) {
        for (int n : counts) {
          auto applied = sync->Apply(policies[n], *local);
          if (!applied.ok()) {
            std::fprintf(stderr, "policy-bench: apply %d policies: %s\n", n,
                         std::string(applied.status().message()).c_str());
            rc = 1;
            break;
          }
          rates[n].push_back(Measure(addr, absl::Seconds(seconds), failed));
        }
        if (rc) break;
      }
      if (rc == 0) {
        std::printf("# %d rounds of %.1f s per policy count, alternating; median conn/s\n", rounds,
                    seconds);
        std::printf("%-10s %-10s %-10s %s\n", "policies", "rows", "conn/s", "ratio_to_0");
        const double base = Median(rates[counts.front()]);
        for (int n : counts) {
          int rows = 0;
          for (const auto& s : policies[n].sets()) rows += s.rows_size();
          const double rate = Median(rates[n]);
          std::printf("%-10d %-10d %-10.0f %.3f\n", n, rows, rate, rate / base);
        }
        std::printf("# failed connects: %llu\n", static_cast<unsigned long long>(failed));
      }
      (void)sync->Apply(v1::CompiledPolicy(), *local);
    }
    (void)agent::JoinCgroup(mesh, ::getpid());
  }
  ::rmdir(client.c_str());
  ::rmdir(payment.c_str());
  ::rmdir((mesh + "/shop").c_str());
  return rc;
}

}  // namespace
}  // namespace sockmesh::bench

int main(int argc, char** argv) {
  CLI::App app{"New-connection rate with 0, 100 and 10,000 authorization policies in force"};
  int rounds = 7;
  double seconds = 1.0;
  std::vector<int> counts = {0, 100, 10000};
  app.add_option("--rounds", rounds, "Alternating rounds")->capture_default_str();
  app.add_option("--seconds", seconds, "Length of one measurement")->capture_default_str();
  app.add_option("--policies", counts, "Policy counts; the first is the baseline")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  return sockmesh::bench::Run(rounds, seconds, counts);
}
