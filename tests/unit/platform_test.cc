// SPDX-License-Identifier: Apache-2.0
// The platform services' shared pieces: service address resolution (flag or
// <NAME>_SERVICE_HOST/_PORT), and the HTTP /health answer, parsed and over a real socket.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "services/platform/health_server.h"
#include "services/platform/service_address.h"
#include "services/platform/store_flags.h"

namespace sockmesh::platform {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

class ServiceAddressTest : public ::testing::Test {
 protected:
  void SetUp() override { Clear(); }
  void TearDown() override { Clear(); }
  static void Clear() {
    for (const char* var :
         {"ORDER_DB_SERVICE_HOST", "ORDER_DB_SERVICE_PORT", "USER_SERVICE_HOST",
          "USER_SERVICE_PORT", "POSTGRES_SERVICE_HOST", "POSTGRES_SERVICE_PORT"}) {
      unsetenv(var);
    }
  }
};

TEST_F(ServiceAddressTest, PrefixIsKubernetesStyle) {
  EXPECT_EQ(ServiceEnvPrefix("user"), "USER");
  EXPECT_EQ(ServiceEnvPrefix("order-db"), "ORDER_DB");
}

TEST_F(ServiceAddressTest, FlagWinsOverEnvironment) {
  setenv("USER_SERVICE_HOST", "127.10.1.1", 1);
  EXPECT_EQ(ResolveServiceAddress("user", "--user-addr", "127.10.9.9:81", 7001).value(),
            "127.10.9.9:81");
}

TEST_F(ServiceAddressTest, EnvironmentGivesHostAndPort) {
  setenv("ORDER_DB_SERVICE_HOST", "127.10.1.1", 1);
  EXPECT_EQ(ResolveServiceAddress("order-db", "--db", "", 5432).value(), "127.10.1.1:5432");
  setenv("ORDER_DB_SERVICE_PORT", "15432", 1);
  EXPECT_EQ(ResolveServiceAddress("order-db", "--db", "", 5432).value(), "127.10.1.1:15432");
  setenv("ORDER_DB_SERVICE_HOST", "fd00::1", 1);
  EXPECT_EQ(ResolveServiceAddress("order-db", "--db", "", 5432).value(), "[fd00::1]:15432");
}

TEST_F(ServiceAddressTest, MissingOrInvalidIsExplained) {
  absl::StatusOr<std::string> missing = ResolveServiceAddress("user", "--user-addr", "", 7001);
  EXPECT_EQ(missing.status().message(),
            "no address for service user: pass --user-addr or set USER_SERVICE_HOST (and "
            "USER_SERVICE_PORT)");
  setenv("USER_SERVICE_HOST", "127.10.1.1", 1);
  setenv("USER_SERVICE_PORT", "http", 1);
  EXPECT_EQ(ResolveServiceAddress("user", "--user-addr", "", 7001).status().message(),
            "USER_SERVICE_PORT: invalid value \"http\": must be an integer 1-65535");
  EXPECT_EQ(ResolveServiceAddress("user", "--user-addr", "10.0.0.1", 7001).status().message(),
            "--user-addr: invalid value \"10.0.0.1\": must be HOST:PORT with a port 1-65535");
}

TEST_F(ServiceAddressTest, PostgresConnInfoUsesTheServiceAddress) {
  setenv("POSTGRES_SERVICE_HOST", "127.10.5.1", 1);
  StoreFlags flags;
  flags.postgres_db = "shop";
  EXPECT_THAT(PostgresConnInfo(flags).value(),
              StartsWith("host='127.10.5.1' port=5432 dbname='shop' user='postgres'"));
}

nlohmann::json Body(const std::string& reply) {
  return nlohmann::json::parse(reply.substr(reply.find("\r\n\r\n") + 4));
}

TEST(HealthAnswerTest, HealthIsOkWithTheServiceName) {
  HealthReply reply = AnswerHealthRequest("order", "GET /health HTTP/1.1\r\nHost: x");
  EXPECT_THAT(reply.bytes, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(reply.bytes, HasSubstr("Content-Type: application/json\r\n"));
  EXPECT_EQ(Body(reply.bytes), (nlohmann::json{{"status", "ok"}, {"service", "order"}}));
  EXPECT_TRUE(reply.keep_alive);
  EXPECT_TRUE(AnswerHealthRequest("order", "GET /health?verbose=1 HTTP/1.1")
                  .bytes.starts_with("HTTP/1.1 200"));
}

TEST(HealthAnswerTest, ConnectionHeadersDecidePersistence) {
  EXPECT_FALSE(AnswerHealthRequest("u", "GET /health HTTP/1.1\r\nConnection: close").keep_alive);
  EXPECT_FALSE(AnswerHealthRequest("u", "GET /health HTTP/1.0").keep_alive);
  EXPECT_TRUE(
      AnswerHealthRequest("u", "GET /health HTTP/1.0\r\nConnection: keep-alive").keep_alive);
}

TEST(HealthAnswerTest, HeadHasNoBody) {
  HealthReply reply = AnswerHealthRequest("u", "HEAD /health HTTP/1.1");
  EXPECT_THAT(reply.bytes, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_TRUE(reply.bytes.ends_with("\r\n\r\n"));
}

TEST(HealthAnswerTest, OtherRequestsGetProperErrors) {
  EXPECT_THAT(AnswerHealthRequest("u", "GET /nope HTTP/1.1").bytes, StartsWith("HTTP/1.1 404 "));
  HealthReply post = AnswerHealthRequest("u", "DELETE /health HTTP/1.1");
  EXPECT_THAT(post.bytes, StartsWith("HTTP/1.1 405 "));
  EXPECT_THAT(post.bytes, HasSubstr("Allow: GET, HEAD\r\n"));
  HealthReply garbage = AnswerHealthRequest("u", "hello");
  EXPECT_THAT(garbage.bytes, StartsWith("HTTP/1.1 400 "));
  EXPECT_FALSE(garbage.keep_alive);
  HealthReply with_body = AnswerHealthRequest("u", "GET /health HTTP/1.1\r\nContent-Length: 3");
  EXPECT_THAT(with_body.bytes, StartsWith("HTTP/1.1 400 "));
  EXPECT_FALSE(with_body.keep_alive);
}

std::string Exchange(int port, const std::string& request) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return "connect failed";
  }
  ::send(fd, request.data(), request.size(), 0);
  std::string reply;
  char buf[4096];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof(buf), 0)) > 0) reply.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return reply;
}

TEST(HealthServerTest, AnswersOverASocketWithKeepAliveThenClose) {
  absl::StatusOr<std::unique_ptr<HealthServer>> server =
      HealthServer::Start("product", "127.0.0.1:0");
  ASSERT_TRUE(server.ok()) << server.status();
  // Two pipelined requests on one connection; the second closes it, so recv() sees EOF.
  const std::string reply =
      Exchange((*server)->port(),
               "GET /health HTTP/1.1\r\nHost: a\r\n\r\nGET /health HTTP/1.1\r\nConnection: "
               "close\r\n\r\n");
  const size_t second = reply.find("HTTP/1.1 200", 1);
  ASSERT_NE(second, std::string::npos) << reply;
  EXPECT_THAT(reply.substr(0, second), HasSubstr("{\"service\":\"product\",\"status\":\"ok\"}"));
  EXPECT_THAT(reply.substr(second), HasSubstr("Connection: close"));
}

TEST(HealthServerTest, StopsWithAnIdleConnectionOpen) {
  absl::StatusOr<std::unique_ptr<HealthServer>> server = HealthServer::Start("user", "127.0.0.1:0");
  ASSERT_TRUE(server.ok()) << server.status();
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>((*server)->port()));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ::usleep(200'000);  // Let the server accept it and block reading.
  server->reset();    // Must not wait for the 30 s idle timeout.
  char c;
  EXPECT_EQ(::recv(fd, &c, 1, 0), 0);
  ::close(fd);
}

}  // namespace
}  // namespace sockmesh::platform
