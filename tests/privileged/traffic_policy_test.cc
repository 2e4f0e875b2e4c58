// SPDX-License-Identifier: Apache-2.0
// TrafficPolicy end to end with real TCP connections through the real hooks in a throwaway
// cgroup: manifests (Service, EndpointSlice, Pods, TrafficPolicy) go through the parser and the
// compiler, the result through MapSync into the kernel, and the test's own connects show the
// canary split, circuit breaking, outlier ejection and a policy change under traffic. VIPs are in
// 127.10.41.0/24, backends on 127.0.41.x port 18041.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "control_plane/sources/manifest_parser.h"
#include "control_plane/sources/workload_builder.h"
#include "gtest/gtest.h"
#include "sockmesh/consts.h"
#include "tests/support/name_server.h"
#include "tests/support/test_datapath.h"
#include "userspace/agent/abi_conversion.h"
#include "userspace/sys/unique_fd.h"

namespace sockmesh::testing {
namespace {

constexpr uint16_t kBackendPort = 18041;

struct Pod {
  std::string name;
  std::string ip;
  std::string version;
};

// Service `name` on `vip`:80 backed by `pods` (one EndpointSlice), the Pods themselves, and
// `policy` (a TrafficPolicy's spec, indented two spaces) when not empty.
std::string Manifests(const std::string& name, const std::string& vip, const std::vector<Pod>& pods,
                      const std::string& policy) {
  std::string out =
      absl::StrCat(R"(apiVersion: v1
kind: Service
metadata: {name: )",
                   name, R"(, namespace: shop}
spec:
  clusterIP: )",
                   vip, R"(
  ports: [{port: 80, targetPort: )",
                   kBackendPort, R"(}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: )",
                   name, R"(-1, namespace: shop, labels: {kubernetes.io/service-name: )", name,
                   R"(}}
addressType: IPv4
ports: [{port: )",
                   kBackendPort, R"(}]
endpoints:
)");
  for (const Pod& p : pods) absl::StrAppend(&out, "- addresses: [", p.ip, "]\n");
  for (const Pod& p : pods) {
    absl::StrAppend(&out, "---\napiVersion: v1\nkind: Pod\nmetadata: {name: ", p.name,
                    ", namespace: shop, labels: {version: ", p.version,
                    "}}\nstatus: {podIP: ", p.ip, "}\n");
  }
  if (!policy.empty()) {
    absl::StrAppend(&out, "---\napiVersion: sockmesh.io/v1alpha1\nkind: TrafficPolicy\n",
                    "metadata: {name: ", name, "-policy, namespace: shop}\nspec:\n  host: ", name,
                    "\n", policy);
  }
  return out;
}

constexpr char kSplit9010[] = R"(  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
  split:
  - {subset: v1, weight: 90}
  - {subset: v2, weight: 10}
)";

class TrafficPolicyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dp = TestDatapath::Create();
    ASSERT_TRUE(dp.ok()) << "cannot attach the datapath (needs root, BPF, cgroup v2, sockops and "
                            "cgroup/sock_release): "
                         << dp.status();
    dp_ = *std::move(dp);
  }

  void StartBackends(const std::vector<Pod>& pods) {
    for (const Pod& p : pods) {
      auto s = NameServer::Start(p.name, NameServer::Kind::kTcp, p.ip, kBackendPort);
      ASSERT_TRUE(s.ok()) << s.status();
      servers_[p.name] = *std::move(s);
    }
  }

  // Parses and compiles the manifests, as the control plane does, and programs the result.
  void Apply(const std::string& yaml) {
    absl::StatusOr<sources::ParsedManifests> parsed = sources::ParseManifests(yaml, "test.yaml");
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    absl::StatusOr<model::DesiredState> state = sources::BuildDesiredState(*parsed, state_);
    ASSERT_TRUE(state.ok()) << state.status();
    state_ = *std::move(state);
    agent::SyncReport r = dp_->Apply(state_);
    ASSERT_EQ(r.failed, 0) << r.Summary() << ": " << (r.errors.empty() ? "" : r.errors[0]);
  }

  // The outlier state of the backend at `ip`, from sm_be_outlier_v1 (zeroes when it has none).
  sm_be_outlier OutlierOf(const std::string& ip) {
    agent::DatapathMaps& m = dp_->datapath().maps();
    auto backends = m.backends.Dump();
    EXPECT_TRUE(backends.ok());
    if (!backends.ok()) return {};
    for (const auto& [key, be] : *backends) {
      absl::StatusOr<model::Backend> b = agent::FromAbiBackend(be);
      if (!b.ok() || b->address.ToString() != ip) continue;
      auto o =
          m.outliers.Lookup(sm_be_conn_key{.svc_id = key.svc_id, .backend_id = key.backend_id});
      return o.ok() ? *o : sm_be_outlier{};
    }
    return {};
  }

  std::unique_ptr<TestDatapath> dp_;
  std::map<std::string, std::unique_ptr<NameServer>> servers_;
  model::DesiredState state_;
};

// 3000 connects to a 90/10 split of v1 (two Pods) and v2 (one Pod). v2's count is binomial
// (n = 3000, p = 0.1: mean 300, sd 16.4); the bound is +-5 sd, so a correct datapath fails it
// about once in 1.7 million runs. The table's own rounding (1021 slots) moves p by under 0.001.
TEST_F(TrafficPolicyTest, CanarySplitNinetyTenIsObservedWithinFiveSigma) {
  const std::vector<Pod> pods = {
      {"web-a", "127.0.41.1", "v1"}, {"web-b", "127.0.41.2", "v1"}, {"web-c", "127.0.41.3", "v2"}};
  ASSERT_NO_FATAL_FAILURE(StartBackends(pods));
  ASSERT_NO_FATAL_FAILURE(Apply(Manifests("web", "127.10.41.1", pods, kSplit9010)));
  constexpr int kConnects = 3000;
  std::map<std::string, int> seen;
  for (int i = 0; i < kConnects; ++i) {
    DialResult r = DialTcp("127.10.41.1", 80);
    ASSERT_EQ(r.error, 0) << "connect " << i << ": " << strerror(r.error);
    seen[r.reply]++;
  }
  const double sd = std::sqrt(kConnects * 0.1 * 0.9);
  EXPECT_NEAR(seen["web-c"], kConnects * 0.1, 5 * sd) << "v2 (canary)";
  EXPECT_NEAR(seen["web-a"] + seen["web-b"], kConnects * 0.9, 5 * sd) << "v1";
  // Within v1 the two Pods share evenly: each is binomial(2700, 0.5), sd 26.
  EXPECT_NEAR(seen["web-a"], seen["web-b"], 2 * 5 * 26.0);
  EXPECT_EQ(seen.size(), 3u);
}

// maxConnections 2 on two backends: four held connections fill them, the next connects are
// refused at once (ECONNREFUSED, counted), and a close admits exactly one more.
TEST_F(TrafficPolicyTest, CircuitBreakerFromConnectionPoolRefusesOverTheLimit) {
  const std::vector<Pod> pods = {{"cb-a", "127.0.41.11", "v1"}, {"cb-b", "127.0.41.12", "v1"}};
  ASSERT_NO_FATAL_FAILURE(StartBackends(pods));
  // The annotation-free Service is unlimited; the policy sets the limit.
  ASSERT_NO_FATAL_FAILURE(
      Apply(Manifests("cb", "127.10.41.2", pods,
                      "  trafficPolicy: {connectionPool: {tcp: {maxConnections: 2}}}\n")));
  auto hold = [] {
    sys::UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(80);
    inet_pton(AF_INET, "127.10.41.2", &sa.sin_addr);
    int err = connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0 ? 0 : errno;
    return std::make_pair(std::move(fd), err);
  };
  std::vector<sys::UniqueFd> held;
  for (int i = 0; i < 4; ++i) {
    auto [fd, err] = hold();
    ASSERT_EQ(err, 0) << "connect " << i << ": " << strerror(err);
    held.push_back(std::move(fd));
  }
  const uint64_t refused_before = dp_->Counter(SM_CNT_CONN_LIMIT);
  for (int i = 0; i < 20; ++i) {
    auto start = std::chrono::steady_clock::now();
    auto [fd, err] = hold();
    EXPECT_EQ(err, ECONNREFUSED) << "connect over the limit " << i;
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(100));
  }
  EXPECT_EQ(dp_->Counter(SM_CNT_CONN_LIMIT), refused_before + 20);
  held.pop_back();
  {
    auto [fd, err] = hold();
    EXPECT_EQ(err, 0) << "a close frees one slot";
    auto [fd2, err2] = hold();
    EXPECT_EQ(err2, ECONNREFUSED) << "and only one";
  }
}

// consecutiveConnectFailures 3, baseEjectionTime 1s. One of three backends stops listening, so
// its connects are answered by RST. After its third failure it is ejected: the next 1.5 s of
// connects (sequential, so each failure is seen before the next connect) fail exactly three times
// in all. Once the back-off ends it gets one connect again, fails, and is ejected for 2 s.
TEST_F(TrafficPolicyTest, OutlierEjectionStopsFailuresUntilTheBackOffEnds) {
  const std::vector<Pod> pods = {
      {"od-a", "127.0.41.21", "v1"}, {"od-b", "127.0.41.22", "v1"}, {"od-c", "127.0.41.23", "v1"}};
  ASSERT_NO_FATAL_FAILURE(StartBackends(pods));
  ASSERT_NO_FATAL_FAILURE(Apply(Manifests(
      "od", "127.10.41.3", pods,
      "  trafficPolicy:\n    outlierDetection: {consecutiveConnectFailures: 3, baseEjectionTime: "
      "1s, maxEjectionPercent: 50}\n")));
  servers_.erase("od-c");  // closes its listening socket: connects to it get RST

  auto run = [](std::chrono::milliseconds how_long, int& ok, int& refused) {
    const auto end = std::chrono::steady_clock::now() + how_long;
    while (std::chrono::steady_clock::now() < end) {
      DialResult r = DialTcp("127.10.41.3", 80);
      if (r.error == 0) {
        ++ok;
      } else if (r.error == ECONNREFUSED) {
        ++refused;
      } else {
        ADD_FAILURE() << "unexpected connect error " << strerror(r.error);
        return;
      }
    }
  };
  const uint64_t ejected_before = dp_->Counter(SM_CNT_OUTLIER_EJECTED);
  const auto start = std::chrono::steady_clock::now();
  int ok = 0, refused = 0;
  run(std::chrono::milliseconds(700), ok, refused);
  EXPECT_EQ(refused, 3) << "three failures eject; none after (" << ok << " succeeded)";
  EXPECT_GT(ok, 100);
  sm_be_outlier o = OutlierOf("127.0.41.23");
  EXPECT_EQ(o.ejections, 1u);
  EXPECT_GE(o.consecutive_failures, 3u);
  EXPECT_EQ(dp_->Counter(SM_CNT_OUTLIER_EJECTED), ejected_before + 1);
  EXPECT_EQ(OutlierOf("127.0.41.21").consecutive_failures, 0u) << "healthy backends never fail";

  // Past the 1 s back-off (measured from the first failure, within the first 700 ms): one retry,
  // which fails and ejects it again for 2 s.
  std::this_thread::sleep_until(start + std::chrono::milliseconds(1100));
  int ok2 = 0, refused2 = 0;
  run(std::chrono::milliseconds(700), ok2, refused2);
  EXPECT_EQ(refused2, 1) << "one connect tries the backend again after the back-off";
  EXPECT_EQ(OutlierOf("127.0.41.23").ejections, 2u);
  EXPECT_EQ(dp_->Counter(SM_CNT_OUTLIER_EJECTED), ejected_before + 2);

  // It comes back: the next connect that reaches it succeeds and resets the failure count.
  ASSERT_NO_FATAL_FAILURE(StartBackends({pods[2]}));
  std::this_thread::sleep_until(start + std::chrono::milliseconds(1100 + 2100));
  int ok3 = 0, refused3 = 0;
  run(std::chrono::milliseconds(300), ok3, refused3);
  EXPECT_EQ(refused3, 0);
  EXPECT_EQ(OutlierOf("127.0.41.23").consecutive_failures, 0u);
  EXPECT_GT(servers_["od-c"]->served(), 0u);
}

// Four client threads connect without pause while the policy goes 90/10 -> 50/50 -> 0/100 ->
// removed -> 90/10 again: not one connect fails.
TEST_F(TrafficPolicyTest, PolicyChangesUnderTrafficFailNoConnect) {
  const std::vector<Pod> pods = {{"ch-a", "127.0.41.31", "v1"}, {"ch-b", "127.0.41.32", "v2"}};
  ASSERT_NO_FATAL_FAILURE(StartBackends(pods));
  auto split = [](int v1, int v2) {
    return absl::StrCat(
        "  subsets:\n  - {name: v1, labels: {version: v1}}\n  - {name: v2, labels: {version: "
        "v2}}\n  split:\n  - {subset: v1, weight: ",
        v1, "}\n  - {subset: v2, weight: ", v2, "}\n");
  };
  ASSERT_NO_FATAL_FAILURE(Apply(Manifests("ch", "127.10.41.4", pods, split(90, 10))));
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, failed{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&] {
      while (!stop.load()) {
        DialResult r = DialTcp("127.10.41.4", 80);
        (r.error == 0 ? ok : failed).fetch_add(1);
      }
    });
  }
  const std::vector<std::string> phases = {split(50, 50), split(0, 100), "", split(90, 10)};
  for (const std::string& policy : phases) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    Apply(Manifests("ch", "127.10.41.4", pods, policy));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  stop = true;
  for (std::thread& t : clients) t.join();
  EXPECT_EQ(failed.load(), 0) << ok.load() << " connects succeeded";
  EXPECT_GT(ok.load(), 200);
}

}  // namespace
}  // namespace sockmesh::testing
