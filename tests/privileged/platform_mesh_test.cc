// SPDX-License-Identifier: Apache-2.0
// The platform on the mesh: the five services, two replicas each, as processes in a throwaway
// mesh cgroup with the real connect hook attached. Each service has a VIP in 127.10.30.0/24
// (gRPC :80, /health :8080) and knows the others only by VIP, through USER_SERVICE_HOST and the
// like. Orders placed through the order VIP must succeed, fail with the right status where they
// should, reach both replicas of every service, and every process must stop cleanly on SIGTERM.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "services/platform/channel_pool.h"
#include "sockmesh/shop/v1/order.grpc.pb.h"
#include "tests/support/agent_process.h"
#include "tests/support/model_builders.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_datapath.h"

#ifndef SOCKMESH_SERVICES_BIN_DIR
#error "SOCKMESH_SERVICES_BIN_DIR must name the directory of the service binaries"
#endif

namespace sockmesh::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kBinDir[] = SOCKMESH_SERVICES_BIN_DIR;
constexpr uint16_t kGrpcPort = 80;
constexpr uint16_t kHttpPort = 8080;
constexpr int kOrders = 200;

struct PlatformService {
  const char* name;
  int index;  // VIP 127.10.30.<index>, replicas 127.0.30.<index>1 and <index>2.
  std::string vip() const { return absl::StrCat("127.10.30.", index); }
  std::string replica(int r) const { return absl::StrCat("127.0.30.", index, r); }
  uint16_t grpc_port() const { return static_cast<uint16_t>(7000 + index); }
  uint16_t http_port() const { return static_cast<uint16_t>(8000 + index); }
};
constexpr PlatformService kServices[] = {
    {"user", 1}, {"product", 2}, {"inventory", 3}, {"payment", 4}, {"order", 5}};

// ESTABLISHED TCP connections whose local end is ip:port, from /proc/net/tcp and tcp6 (this
// network namespace): a backend that served connections the mesh sent it has some. gRPC listens
// on dual-stack IPv6 sockets, so its IPv4 connections show up in tcp6 as ::ffff:a.b.c.d.
int EstablishedTo(const std::string& ip, uint16_t port) {
  in_addr addr{};
  inet_pton(AF_INET, ip.c_str(), &addr);
  // The kernel prints each address word as the raw (network-order) u32 in host-order hex.
  const std::string v4 = absl::StrFormat("%08X:%04X", addr.s_addr, port);
  const std::string mapped =
      absl::StrFormat("0000000000000000FFFF0000%08X:%04X", addr.s_addr, port);
  int count = 0;
  for (const char* file : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream in(file);
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string slot, local_address, remote_address, state;
      fields >> slot >> local_address >> remote_address >> state;
      if ((local_address == v4 || local_address == mapped) && state == "01") ++count;
    }
  }
  return count;
}

// GET /health over a fresh connection to ip:port; the whole response.
std::string GetHealth(const std::string& ip, uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  inet_pton(AF_INET, ip.c_str(), &addr.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    const std::string error = absl::StrCat("connect ", ip, ":", port, ": ", strerror(errno));
    ::close(fd);
    return error;
  }
  const std::string request = "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  ::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  std::string reply;
  char buf[4096];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof(buf), 0)) > 0) reply.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return reply;
}

class PlatformMeshTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<TestDatapath>> dp = TestDatapath::Create();
    ASSERT_TRUE(dp.ok()) << "cannot attach the datapath (needs root, BPF, cgroup v2): "
                         << dp.status();
    dp_ = *std::move(dp);
    model::DesiredState state;
    for (const PlatformService& s : kServices) {
      AddService(state, MakeService(s.vip(), kGrpcPort, model::Protocol::kTcp,
                                    {MakeBackend(s.replica(1), s.grpc_port()),
                                     MakeBackend(s.replica(2), s.grpc_port())}));
      AddService(state, MakeService(s.vip(), kHttpPort, model::Protocol::kTcp,
                                    {MakeBackend(s.replica(1), s.http_port()),
                                     MakeBackend(s.replica(2), s.http_port())}));
      // Kubernetes-style discovery: the order replicas inherit these from the test.
      const std::string prefix = absl::AsciiStrToUpper(s.name);
      setenv(absl::StrCat(prefix, "_SERVICE_HOST").c_str(), s.vip().c_str(), 1);
      setenv(absl::StrCat(prefix, "_SERVICE_PORT").c_str(), "80", 1);
    }
    agent::SyncReport report = dp_->Apply(state);
    ASSERT_EQ(report.failed, 0) << report.Summary();

    // Started from this process, which sits in the mesh cgroup: so do they.
    for (const PlatformService& s : kServices) {
      for (int r = 1; r <= 2; ++r) {
        std::vector<std::string> args = {"--listen", absl::StrCat(s.replica(r), ":", s.grpc_port()),
                                         "--health-listen",
                                         absl::StrCat(s.replica(r), ":", s.http_port())};
        if (std::string(s.name) == "order") {
          args.insert(args.end(), {"--connections-per-service", "16"});
        }
        absl::StatusOr<std::unique_ptr<AgentProcess>> process =
            AgentProcess::Start(absl::StrCat(kBinDir, "/sockmesh-", s.name), args,
                                absl::StrCat(dir_.path(), "/", s.name, "-", r, ".log"));
        ASSERT_TRUE(process.ok()) << process.status();
        processes_.push_back(*std::move(process));
      }
    }
    for (auto& process : processes_) {
      ASSERT_TRUE(process->WaitForLog("serving gRPC on", absl::Seconds(30)).ok()) << process->Log();
    }
  }

  void TearDown() override {
    // Before the datapath: its cgroup can only be removed once empty.
    processes_.clear();
    dp_.reset();
    for (const PlatformService& s : kServices) {
      const std::string prefix = absl::AsciiStrToUpper(s.name);
      unsetenv(absl::StrCat(prefix, "_SERVICE_HOST").c_str());
      unsetenv(absl::StrCat(prefix, "_SERVICE_PORT").c_str());
    }
  }

  TempDir dir_{"sockmesh-platform-mesh"};
  std::unique_ptr<TestDatapath> dp_;
  std::vector<std::unique_ptr<AgentProcess>> processes_;
};

TEST_F(PlatformMeshTest, OrdersFlowThroughVipsToBothReplicasOfEveryService) {
  for (const PlatformService& s : kServices) {
    const std::string health = GetHealth(s.vip(), kHttpPort);
    EXPECT_THAT(health, HasSubstr("HTTP/1.1 200 OK")) << s.name;
    EXPECT_THAT(health,
                HasSubstr(absl::StrCat("{\"service\":\"", s.name, "\",\"status\":\"ok\"}")));
  }

  // 16 connections to the order VIP, so both order replicas get some (each connection's replica
  // is the mesh's pick at connect()); the order replicas do the same towards the others.
  platform::ChannelPool pool = platform::ChannelPool::Dial("127.10.30.5:80", 16);
  int placed = 0;
  for (int i = 0; i < kOrders; ++i) {
    shop::v1::PlaceOrderRequest request;
    request.set_user_id(absl::StrCat("u-", 1 + i % 50));
    request.set_product_id(absl::StrCat("p-", 1 + i % 20));
    request.set_quantity(1);
    request.set_card_token("tok_visa");
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    shop::v1::Order order;
    grpc::Status status =
        shop::v1::OrderService::NewStub(pool.Next())->PlaceOrder(&context, request, &order);
    EXPECT_TRUE(status.ok()) << i << ": " << status.error_message();
    if (status.ok()) ++placed;
  }
  EXPECT_EQ(placed, kOrders);

  // Failures cross the mesh with their status.
  auto place = [&](const std::string& user, const std::string& card) {
    shop::v1::PlaceOrderRequest request;
    request.set_user_id(user);
    request.set_product_id("p-1");
    request.set_quantity(1);
    request.set_card_token(card);
    grpc::ClientContext context;
    shop::v1::Order order;
    return shop::v1::OrderService::NewStub(pool.Next())->PlaceOrder(&context, request, &order);
  };
  EXPECT_EQ(place("u-999999", "tok_visa").error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(place("u-1", "tok_decline").error_code(), grpc::StatusCode::FAILED_PRECONDITION);

  // Nobody was given a replica's address, so every connection a replica holds came through a
  // VIP; each of the ten has some.
  for (const PlatformService& s : kServices) {
    for (int r = 1; r <= 2; ++r) {
      EXPECT_GT(EstablishedTo(s.replica(r), s.grpc_port()), 0)
          << s.name << " replica " << s.replica(r) << " got no connection through " << s.vip();
    }
  }

  // The load generator through the order VIP: a short open-loop run, all answered.
  const std::string log = absl::StrCat(dir_.path(), "/loadgen.json");
  absl::StatusOr<AgentRun> run = RunAgentToCompletion(
      absl::StrCat(kBinDir, "/sockmesh-loadgen"),
      {"--rate", "100", "--duration", "2", "-c", "8", "--connections", "8", "-q", "-o", "json"},
      log, "", absl::Seconds(60));
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_EQ(run->exit_code, 0) << run->log;
  // The log starts with the command line; the summary is the JSON object after it.
  const size_t json_start = run->log.find('{');
  ASSERT_NE(json_start, std::string::npos) << run->log;
  nlohmann::json summary = nlohmann::json::parse(run->log.substr(json_start), nullptr, false);
  ASSERT_FALSE(summary.is_discarded()) << run->log;
  EXPECT_EQ(summary["target"], "127.10.30.5:80") << "found through ORDER_SERVICE_HOST";
  EXPECT_EQ(summary["errors"], 0) << run->log;
  EXPECT_GE(summary["ok"].get<int>(), 150) << run->log;

  // Every service stops cleanly on SIGTERM.
  for (auto& process : processes_) {
    absl::StatusOr<int> exit_code = process->Terminate(absl::Seconds(15));
    ASSERT_TRUE(exit_code.ok()) << exit_code.status();
    EXPECT_EQ(*exit_code, 0) << process->Log();
    EXPECT_THAT(process->Log(), HasSubstr("stopped"));
  }
}

}  // namespace
}  // namespace sockmesh::testing
