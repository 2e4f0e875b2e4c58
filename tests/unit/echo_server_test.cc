// SPDX-License-Identifier: Apache-2.0
// Runs the real sockmesh-echo binary on loopback ports and talks to it over TCP and UDP.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

#ifndef SOCKMESH_ECHO_BIN
#error "SOCKMESH_ECHO_BIN must name the sockmesh-echo binary"
#endif

extern char** environ;

namespace sockmesh::echo {
namespace {

using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

constexpr auto kTimeout = std::chrono::seconds(10);
constexpr std::string_view kName = "echo-test-backend";

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    std::swap(fd_, other.fd_);
    return *this;
  }
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

int RemainingMs(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

sockaddr_in Loopback(uint16_t port) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return address;
}

// Asks the kernel for a free port by binding port 0. The port is released before the server binds
// it, so another process could take it in between; callers retry on a bind failure.
uint16_t FreePort(int type) {
  Fd fd(socket(AF_INET, type, 0));
  sockaddr_in address = Loopback(0);
  socklen_t length = sizeof(address);
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      getsockname(fd.get(), reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    return 0;
  }
  return ntohs(address.sin_port);
}

bool SendAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    data.remove_prefix(n);
  }
  return true;
}

// Appends whatever arrives within the deadline to `buffer` until `done(buffer)` holds. Returns
// false on timeout; sets `eof` when the peer closed.
template <typename Done>
bool ReadUntil(int fd, std::string& buffer, Done done, Clock::time_point deadline,
               bool* eof = nullptr) {
  while (!done(buffer)) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, RemainingMs(deadline)) <= 0) return false;
    char chunk[4096];
    const ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
    if (n <= 0) {
      if (eof != nullptr) *eof = true;
      return done(buffer);
    }
    buffer.append(chunk, n);
  }
  return true;
}

Fd ConnectTcp(uint16_t port) {
  Fd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in address = Loopback(port);
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) return Fd();
  return fd;
}

struct HttpReply {
  std::string head;
  std::string body;
};

// Reads one response framed by Content-Length off `buffer` + socket; leaves extra bytes in buffer.
std::optional<HttpReply> ReadHttpReply(int fd, std::string& buffer) {
  const auto deadline = Clock::now() + kTimeout;
  auto has_head = [](const std::string& b) { return b.find("\r\n\r\n") != std::string::npos; };
  if (!ReadUntil(fd, buffer, has_head, deadline)) return std::nullopt;
  const size_t head_end = buffer.find("\r\n\r\n") + 4;
  HttpReply reply{buffer.substr(0, head_end), ""};
  const size_t at = reply.head.find("Content-Length: ");
  if (at == std::string::npos) return std::nullopt;
  const size_t length = std::stoul(reply.head.substr(at + 16));
  auto has_body = [&](const std::string& b) { return b.size() >= head_end + length; };
  if (!ReadUntil(fd, buffer, has_body, deadline)) return std::nullopt;
  reply.body = buffer.substr(head_end, length);
  buffer.erase(0, head_end + length);
  return reply;
}

// The sockmesh-echo child process, with its stderr on a pipe. Only ever signals its own PID; if a
// test ends early, the destructor kills and reaps it so nothing outlives the test.
class EchoProcess {
 public:
  explicit EchoProcess(const std::vector<std::string>& args) {
    int pipe_fds[2];
    if (pipe2(pipe_fds, O_CLOEXEC) != 0) return;
    log_ = Fd(pipe_fds[0]);
    Fd write_end(pipe_fds[1]);
    std::vector<std::string> argv_storage = {SOCKMESH_ECHO_BIN};
    argv_storage.insert(argv_storage.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& arg : argv_storage) argv.push_back(arg.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, write_end.get(), STDERR_FILENO);
    if (posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
  }
  EchoProcess(const EchoProcess&) = delete;
  EchoProcess& operator=(const EchoProcess&) = delete;
  ~EchoProcess() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }

  bool started() const { return pid_ > 0; }

  // The next line the server logs, or "" on timeout or exit.
  std::string ReadLogLine() {
    while (log_buffer_.find('\n') == std::string::npos) {
      pollfd p{log_.get(), POLLIN, 0};
      if (poll(&p, 1, RemainingMs(Clock::now() + kTimeout)) <= 0) break;
      char chunk[1024];
      const ssize_t n = read(log_.get(), chunk, sizeof(chunk));
      if (n <= 0) break;  // The server exited.
      log_buffer_.append(chunk, n);
    }
    const size_t newline = log_buffer_.find('\n');
    if (newline == std::string::npos) return std::exchange(log_buffer_, "");
    std::string line = log_buffer_.substr(0, newline);
    log_buffer_.erase(0, newline + 1);
    return line;
  }

  // Waits for the process to exit (after sending `signal`, if non-zero). Returns the wait status.
  std::optional<int> WaitForExit(int signal = 0) {
    if (pid_ <= 0) return std::nullopt;
    if (signal != 0) kill(pid_, signal);
    const auto deadline = Clock::now() + kTimeout;
    while (Clock::now() < deadline) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return status;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return std::nullopt;
  }

 private:
  pid_t pid_ = -1;
  Fd log_;
  std::string log_buffer_;
};

class EchoServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Retry in case another process grabbed a probed port before the server bound it.
    for (int attempt = 0; attempt < 5; ++attempt) {
      tcp_port_ = FreePort(SOCK_STREAM);
      udp_port_ = FreePort(SOCK_DGRAM);
      server_.emplace(std::vector<std::string>{"--name", std::string(kName), "--listen",
                                               "127.0.0.1:" + std::to_string(tcp_port_), "--udp",
                                               "127.0.0.1:" + std::to_string(udp_port_)});
      ASSERT_TRUE(server_->started());
      start_log_ = server_->ReadLogLine();
      if (start_log_.find("listening on") != std::string::npos) return;
      server_.reset();
    }
    FAIL() << "server did not start: " << start_log_;
  }

  void TearDown() override {
    if (!server_) return;
    const std::optional<int> status = server_->WaitForExit(SIGTERM);
    ASSERT_TRUE(status.has_value()) << "no exit within the timeout after SIGTERM";
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << "wait status " << *status;
    EXPECT_THAT(server_->ReadLogLine(), HasSubstr("received SIGTERM"));
  }

  uint16_t tcp_port_ = 0;
  uint16_t udp_port_ = 0;
  std::optional<EchoProcess> server_;
  std::string start_log_;
};

TEST_F(EchoServerTest, LogsItsListenersAtStart) {
  EXPECT_THAT(start_log_, HasSubstr(std::string(kName)));
  EXPECT_THAT(start_log_, HasSubstr("tcp 127.0.0.1:" + std::to_string(tcp_port_)));
  EXPECT_THAT(start_log_, HasSubstr("udp 127.0.0.1:" + std::to_string(udp_port_)));
}

TEST_F(EchoServerTest, HttpGetAnswersJsonAndKeepsAlive) {
  Fd fd = ConnectTcp(tcp_port_);
  ASSERT_GE(fd.get(), 0);
  std::string buffer;

  ASSERT_TRUE(SendAll(fd.get(), "GET /orders/42?x=1 HTTP/1.1\r\nHost: echo\r\n\r\n"));
  std::optional<HttpReply> reply = ReadHttpReply(fd.get(), buffer);
  ASSERT_TRUE(reply.has_value());
  EXPECT_THAT(reply->head, ::testing::StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(reply->head, HasSubstr("Content-Type: application/json\r\n"));
  const nlohmann::json body = nlohmann::json::parse(reply->body);
  EXPECT_EQ(body,
            nlohmann::json({{"service", "echo"}, {"backend", kName}, {"path", "/orders/42"}}));

  // Same connection: keep-alive.
  ASSERT_TRUE(SendAll(fd.get(), "GET /health HTTP/1.1\r\nHost: echo\r\n\r\n"));
  reply = ReadHttpReply(fd.get(), buffer);
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(nlohmann::json::parse(reply->body),
            nlohmann::json({{"status", "ok"}, {"service", "echo"}}));

  // "Connection: close" is answered, then the server closes.
  ASSERT_TRUE(SendAll(fd.get(), "GET /bye HTTP/1.1\r\nConnection: close\r\n\r\n"));
  reply = ReadHttpReply(fd.get(), buffer);
  ASSERT_TRUE(reply.has_value());
  EXPECT_THAT(reply->head, HasSubstr("Connection: close\r\n"));
  bool eof = false;
  ReadUntil(
      fd.get(), buffer, [](const std::string&) { return false; }, Clock::now() + kTimeout, &eof);
  EXPECT_TRUE(eof);
}

TEST_F(EchoServerTest, EchoesLinesPrefixedWithName) {
  Fd fd = ConnectTcp(tcp_port_);
  ASSERT_GE(fd.get(), 0);
  ASSERT_TRUE(SendAll(fd.get(), "hello\nsecond line\n"));
  const std::string expected =
      std::string(kName) + ": hello\n" + std::string(kName) + ": second line\n";
  std::string buffer;
  ASSERT_TRUE(ReadUntil(
      fd.get(), buffer, [&](const std::string& b) { return b.size() >= expected.size(); },
      Clock::now() + kTimeout));
  EXPECT_EQ(buffer, expected);
}

TEST_F(EchoServerTest, EchoesDatagramsToSender) {
  Fd fd(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  sockaddr_in server = Loopback(udp_port_);
  ASSERT_EQ(connect(fd.get(), reinterpret_cast<sockaddr*>(&server), sizeof(server)), 0);
  // UDP may drop even on loopback under load: resend until a reply comes back.
  std::string reply;
  for (int attempt = 0; attempt < 5 && reply.empty(); ++attempt) {
    ASSERT_EQ(send(fd.get(), "ping 1", 6, 0), 6);
    pollfd p{fd.get(), POLLIN, 0};
    if (poll(&p, 1, 2000) != 1) continue;
    char datagram[1024];
    const ssize_t n = recv(fd.get(), datagram, sizeof(datagram), 0);
    if (n > 0) reply.assign(datagram, n);
  }
  EXPECT_EQ(reply, std::string(kName) + ": ping 1");
}

TEST_F(EchoServerTest, ServesHundredsOfConcurrentConnections) {
  constexpr int kConnections = 300;
  std::vector<Fd> clients;
  for (int i = 0; i < kConnections; ++i) {
    clients.push_back(ConnectTcp(tcp_port_));
    ASSERT_GE(clients.back().get(), 0) << "connection " << i;
  }
  // Every connection is open before any is answered, so the server holds all of them at once.
  for (int i = 0; i < kConnections; ++i) {
    ASSERT_TRUE(SendAll(clients[i].get(), "client " + std::to_string(i) + "\n"));
  }
  const auto deadline = Clock::now() + kTimeout;
  for (int i = 0; i < kConnections; ++i) {
    const std::string expected = std::string(kName) + ": client " + std::to_string(i) + "\n";
    std::string buffer;
    ASSERT_TRUE(ReadUntil(
        clients[i].get(), buffer, [&](const std::string& b) { return b.size() >= expected.size(); },
        deadline));
    EXPECT_EQ(buffer, expected);
  }
}

// Runs the binary with `args` and returns its wait status.
std::optional<int> RunToExit(const std::vector<std::string>& args, std::string* log = nullptr) {
  EchoProcess process(args);
  if (!process.started()) return std::nullopt;
  if (log != nullptr) *log = process.ReadLogLine();
  return process.WaitForExit();
}

TEST(EchoServerCliTest, HelpExitsZero) {
  const std::optional<int> status = RunToExit({"--help"});
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0);
}

TEST(EchoServerCliTest, NameIsRequired) {
  const std::optional<int> status = RunToExit({"--listen", "127.0.0.1:0"});
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) != 0);
}

TEST(EchoServerCliTest, RejectsMalformedAddress) {
  std::string log;
  const std::optional<int> status = RunToExit({"--name", "x", "--listen", "localhost:80"}, &log);
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 2);
  EXPECT_THAT(log, HasSubstr("localhost:80"));
}

TEST(EchoServerCliTest, NeedsAtLeastOneListener) {
  const std::optional<int> status = RunToExit({"--name", "x"});
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 2);
}

// The backend named in the JSON answer to a GET on a new connection to `port`, or "" on failure.
std::string BackendAnswering(uint16_t port) {
  Fd fd = ConnectTcp(port);
  std::string buffer;
  if (fd.get() < 0 || !SendAll(fd.get(), "GET / HTTP/1.1\r\nHost: echo\r\n\r\n")) return "";
  std::optional<HttpReply> reply = ReadHttpReply(fd.get(), buffer);
  if (!reply) return "";
  return nlohmann::json::parse(reply->body, nullptr, false).value("backend", "");
}

TEST(EchoServerReusePortTest, ProcessesShareAnAddressAndTheKernelSpreadsConnections) {
  const uint16_t port = FreePort(SOCK_STREAM);
  const std::string listen = "127.0.0.1:" + std::to_string(port);
  EchoProcess first({"--name", "first", "--listen", listen, "--reuse-port"});
  ASSERT_THAT(first.ReadLogLine(), HasSubstr("listening on"));
  // Without the flag the address is taken...
  std::string log;
  std::optional<int> status = RunToExit({"--name", "plain", "--listen", listen}, &log);
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 1) << log;
  EXPECT_THAT(log, HasSubstr("bind"));
  // ...with it, a second process joins.
  EchoProcess second({"--name", "second", "--listen", listen, "--reuse-port"});
  ASSERT_THAT(second.ReadLogLine(), HasSubstr("listening on"));
  std::set<std::string> answered;
  for (int i = 0; i < 64 && answered.size() < 2; ++i) answered.insert(BackendAnswering(port));
  EXPECT_EQ(answered, (std::set<std::string>{"first", "second"}));
}

}  // namespace
}  // namespace sockmesh::echo
