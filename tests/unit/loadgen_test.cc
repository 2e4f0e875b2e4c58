// SPDX-License-Identifier: Apache-2.0
// The load generator: open-loop latency counted from the scheduled time (a stall shows up in the
// requests queued behind it), closed-loop error accounting, HTTP framing against the real /health
// server, and the JSON summary.
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "gtest/gtest.h"
#include "services/loadgen/http_sender.h"
#include "services/loadgen/load_report.h"
#include "services/loadgen/load_runner.h"
#include "services/platform/health_server.h"
#include "userspace/sys/unique_fd.h"

namespace sockmesh::loadgen {
namespace {

using std::chrono::milliseconds;

// Request 0 stalls `stall`; every `fail_every`-th request fails.
class FakeSender : public RequestSender {
 public:
  FakeSender(milliseconds stall, uint64_t fail_every) : stall_(stall), fail_every_(fail_every) {}
  std::string Send(uint64_t sequence) override {
    if (sequence == 0) std::this_thread::sleep_for(stall_);
    if (fail_every_ != 0 && sequence % fail_every_ == 0) return "UNAVAILABLE";
    return "";
  }

 private:
  milliseconds stall_;
  uint64_t fail_every_;
};

SenderFactory Fake(milliseconds stall, uint64_t fail_every = 0) {
  return [=](int) { return std::make_unique<FakeSender>(stall, fail_every); };
}

TEST(LoadRunnerTest, OpenLoopCountsTheWaitBehindAStall) {
  // One worker, a request every 10 ms for 1 s, and the first request takes 300 ms: the ~25
  // requests due meanwhile leave late, and their latency includes the wait. A generator with
  // coordinated omission would report one slow request and 99 fast ones.
  std::atomic<bool> stop{false};
  LoadResult result = RunLoad({.rate = 100, .duration = milliseconds(1000), .workers = 1},
                              Fake(milliseconds(300)), nullptr, stop);
  EXPECT_EQ(result.ok + result.unsent, 100u);
  EXPECT_GE(result.ok, 90u);
  EXPECT_GE(result.late, 20u);
  EXPECT_GT(result.latency_ns.Quantile(0.78), 40e6) << "the queued requests are slow";
  EXPECT_LT(result.latency_ns.Quantile(0.5), 10e6) << "the rest are not";
  EXPECT_GE(result.latency_ns.max(), 300'000'000u);
}

// Fails every request unless Prepare ran first; Prepare takes `prepare` (a slow connect).
class PreparedSender : public RequestSender {
 public:
  explicit PreparedSender(milliseconds prepare) : prepare_(prepare) {}
  void Prepare() override {
    std::this_thread::sleep_for(prepare_);
    prepared_ = true;
  }
  std::string Send(uint64_t) override { return prepared_ ? "" : "not prepared"; }

 private:
  milliseconds prepare_;
  bool prepared_ = false;
};

TEST(LoadRunnerTest, OpenLoopClockStartsOnceEveryWorkerHasConnected) {
  // Four workers take 300 ms each to connect, in parallel: no request waits for it, and the
  // run still lasts its 500 ms after that.
  std::atomic<bool> stop{false};
  const auto t0 = std::chrono::steady_clock::now();
  LoadResult result = RunLoad(
      {.rate = 100, .duration = milliseconds(500), .workers = 4},
      [](int) { return std::make_unique<PreparedSender>(milliseconds(300)); }, nullptr, stop);
  const double took_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(result.errors, 0u) << "Send before Prepare";
  EXPECT_EQ(result.ok, 50u);
  EXPECT_LT(result.latency_ns.max(), 100'000'000u) << "connecting counted in a request";
  EXPECT_GE(result.elapsed_s, 0.45);
  EXPECT_LT(took_s, 1.1) << "workers connected one after another";
}

TEST(LoadRunnerTest, ClosedLoopCountsErrorsByKind) {
  std::atomic<bool> stop{false};
  std::atomic<int> progress_calls{0};
  LoadResult result = RunLoad(
      {.rate = 0, .duration = milliseconds(1500), .workers = 3}, Fake(milliseconds(0), 3),
      [&](const Progress& p) {
        EXPECT_GT(p.sent, 0u);
        ++progress_calls;
      },
      stop);
  const uint64_t total = result.ok + result.errors;
  ASSERT_GT(total, 100u);
  EXPECT_EQ(result.errors_by_kind.at("UNAVAILABLE"), result.errors);
  // Worker w sends w, w+3, w+6...: worker 0 always fails, the others never.
  EXPECT_GT(result.errors, 0u);
  EXPECT_GT(result.ok, 0u);
  EXPECT_GE(progress_calls.load(), 1);
}

TEST(LoadRunnerTest, StopEndsTheRunEarly) {
  std::atomic<bool> stop{true};
  LoadResult result = RunLoad({.rate = 0, .duration = milliseconds(60'000), .workers = 2},
                              Fake(milliseconds(0)), nullptr, stop);
  EXPECT_LT(result.elapsed_s, 5);
}

TEST(HttpResponseHeadTest, ParsesStatusLengthAndClose) {
  absl::StatusOr<HttpResponseHead> head = ParseResponseHead(
      "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 12\r\nConnection: close");
  ASSERT_TRUE(head.ok()) << head.status();
  EXPECT_EQ(head->status, 503);
  EXPECT_EQ(head->content_length, 12u);
  EXPECT_TRUE(head->close);
  EXPECT_FALSE(ParseResponseHead("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked").ok());
  EXPECT_FALSE(ParseResponseHead("HTTP/1.1 200 OK").ok()) << "no length";
  EXPECT_TRUE(ParseResponseHead("HTTP/1.1 204 No Content").ok());
  EXPECT_FALSE(ParseResponseHead("SSH-2.0-OpenSSH").ok());
}

TEST(HttpSenderTest, AnswersOnKeepAliveAndSeesErrors) {
  absl::StatusOr<std::unique_ptr<platform::HealthServer>> server =
      platform::HealthServer::Start("product", "127.0.0.1:0");
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string address = "127.0.0.1:" + std::to_string((*server)->port());
  absl::StatusOr<SenderFactory> health = HttpSenderFactory(address, "/health", milliseconds(2000));
  ASSERT_TRUE(health.ok()) << health.status();
  std::unique_ptr<RequestSender> sender = (*health)(0);
  for (uint64_t i = 0; i < 50; ++i) ASSERT_EQ(sender->Send(i), "") << i;
  absl::StatusOr<SenderFactory> missing = HttpSenderFactory(address, "/nope", milliseconds(2000));
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ((*missing)(0)->Send(0), "http 404");
  EXPECT_FALSE(HttpSenderFactory("localhost:80", "/", milliseconds(1)).ok()) << "numeric only";
}

// Serves `connections` connections one after the other: reads one request head, answers 200
// without "Connection: close" and waits for the client to close. Returns the request heads.
std::vector<std::string> ServeOneRequestPerConnection(int listener, int connections) {
  std::vector<std::string> heads;
  for (int i = 0; i < connections; ++i) {
    sys::UniqueFd conn(::accept(listener, nullptr, nullptr));
    if (!conn.valid()) break;
    std::string head;
    char buf[4096];
    ssize_t n = 0;
    while (head.find("\r\n\r\n") == std::string::npos &&
           (n = ::recv(conn.get(), buf, sizeof(buf), 0)) > 0) {
      head.append(buf, static_cast<size_t>(n));
    }
    constexpr std::string_view kOk = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    if (::send(conn.get(), kOk.data(), kOk.size(), MSG_NOSIGNAL) !=
        static_cast<ssize_t>(kOk.size())) {
      break;
    }
    while ((n = ::recv(conn.get(), buf, sizeof(buf), 0)) > 0)
      head.append(buf, static_cast<size_t>(n));
    heads.push_back(head);
  }
  return heads;
}

// A listener on 127.0.0.1 with a kernel-chosen port; `target` is its "127.0.0.1:port".
void ListenOnLoopback(sys::UniqueFd& listener, std::string& target) {
  listener.Reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(listener.valid());
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(listener.get(), 8), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&addr), &len), 0);
  target = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
}

TEST(HttpSenderTest, ConnectionPerRequestOpensOneConnectionPerRequest) {
  sys::UniqueFd listener;
  std::string target;
  ASSERT_NO_FATAL_FAILURE(ListenOnLoopback(listener, target));
  std::vector<std::string> heads;
  std::thread server([&] { heads = ServeOneRequestPerConnection(listener.get(), 3); });
  absl::StatusOr<SenderFactory> factory =
      HttpSenderFactory(target, "/bytes/2", milliseconds(2000), /*connection_per_request=*/true);
  ASSERT_TRUE(factory.ok()) << factory.status();
  std::unique_ptr<RequestSender> sender = (*factory)(0);
  // The server answers without "Connection: close" and waits for the client to close: each
  // request completes only if the sender closed the connection before it.
  for (uint64_t i = 0; i < 3; ++i) EXPECT_EQ(sender->Send(i), "") << i;
  sender.reset();
  server.join();
  ASSERT_EQ(heads.size(), 3u);
  for (const std::string& head : heads) {
    EXPECT_NE(head.find("GET /bytes/2 HTTP/1.1\r\n"), std::string::npos) << head;
    EXPECT_NE(head.find("\r\nConnection: close\r\n"), std::string::npos) << head;
  }
}

// Whether a connection is waiting on `listener` within `timeout_ms`.
bool ConnectionPending(int listener, int timeout_ms) {
  pollfd p{.fd = listener, .events = POLLIN, .revents = 0};
  return ::poll(&p, 1, timeout_ms) == 1;
}

TEST(HttpSenderTest, PrepareOpensTheKeepAliveConnectionOnly) {
  sys::UniqueFd listener;
  std::string target;
  ASSERT_NO_FATAL_FAILURE(ListenOnLoopback(listener, target));

  absl::StatusOr<SenderFactory> per_request =
      HttpSenderFactory(target, "/", milliseconds(2000), /*connection_per_request=*/true);
  ASSERT_TRUE(per_request.ok()) << per_request.status();
  (*per_request)(0)->Prepare();
  EXPECT_FALSE(ConnectionPending(listener.get(), 100)) << "connecting is what it measures";

  absl::StatusOr<SenderFactory> keep_alive = HttpSenderFactory(target, "/", milliseconds(2000));
  ASSERT_TRUE(keep_alive.ok()) << keep_alive.status();
  std::unique_ptr<RequestSender> sender = (*keep_alive)(0);
  sender->Prepare();
  EXPECT_TRUE(ConnectionPending(listener.get(), 1000)) << "no connection before the first request";
}

TEST(LoadReportTest, JsonHasTheSummaryFields) {
  LoadResult result;
  result.elapsed_s = 2;
  result.ok = 10;
  result.errors = 2;
  result.errors_by_kind["UNAVAILABLE"] = 2;
  for (int i = 1; i <= 12; ++i) result.latency_ns.Add(static_cast<uint64_t>(i) * 1'000'000);
  nlohmann::json json =
      ReportJson({.protocol = "grpc",
                  .request = "place-order",
                  .target = "127.10.0.1:80",
                  .options = {.rate = 6, .duration = milliseconds(2000), .workers = 4}},
                 result);
  EXPECT_EQ(json["mode"], "open");
  EXPECT_EQ(json["requests"], 12);
  EXPECT_EQ(json["achieved_rps"], 6.0);
  EXPECT_EQ(json["errors_by_kind"]["UNAVAILABLE"], 2);
  EXPECT_EQ(json["latency_ms"]["max"], 12.0);
  for (const char* key : {"p50", "p90", "p99", "p99.9"}) {
    EXPECT_TRUE(json["latency_ms"].contains(key)) << key;
  }
  EXPECT_NEAR(json["latency_ms"]["p50"].get<double>(), 6.0, 0.2);
}

TEST(LoadReportTest, HistogramMergedElsewhereGivesTheSameQuantiles) {
  LoadResult result;
  result.elapsed_s = 1;
  result.ok = 3;
  for (uint64_t ns : {150'000, 150'000, 2'000'000}) result.latency_ns.Add(ns);
  const LoadDescription what{
      .protocol = "http", .request = "/", .target = "127.0.0.1:1", .options = {}};
  EXPECT_FALSE(ReportJson(what, result).contains("latency_histogram_ns"));
  nlohmann::json buckets = ReportJson(what, result, /*histogram=*/true)["latency_histogram_ns"];
  ASSERT_EQ(buckets.size(), 2u) << buckets.dump();
  EXPECT_EQ(buckets[0][1], 2);
  EXPECT_EQ(buckets[1][1], 1);
  // The values are the ones Quantile() reports, so a merge of runs takes the same percentiles.
  EXPECT_EQ(buckets[0][0].get<double>(), result.latency_ns.Quantile(0.5));
  EXPECT_EQ(buckets[1][0].get<double>(), result.latency_ns.Quantile(1.0));
}

}  // namespace
}  // namespace sockmesh::loadgen
