// SPDX-License-Identifier: Apache-2.0
// The same-node short-circuit with real sockets: the datapath (including sockops + sk_msg) is
// attached to a throwaway cgroup that this process joins, so both ends of every loopback
// connection here are mesh sockets and their data goes socket to socket. Every test compares the
// bytes exactly (seeded random data), checks that the redirect counter moved (the path was really
// used) and that the sockhash is empty once the sockets are closed. Every blocking call has a
// timeout (SO_RCVTIMEO/SO_SNDTIMEO or poll), so a stalled redirect fails instead of hanging.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "sockmesh/abi.h"
#include "sockmesh/consts.h"
#include "tests/support/scoped_cgroup.h"
#include "tests/support/test_datapath.h"
#include "userspace/sys/unique_fd.h"

namespace sockmesh::testing {
namespace {

using sys::UniqueFd;

// Upper bound for any single blocking socket call.
constexpr int kIoTimeoutSeconds = 10;

std::vector<uint8_t> RandomBytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<uint8_t> out(n);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t v = rng();
    std::memcpy(&out[i], &v, 8);
  }
  for (; i < n; ++i) out[i] = static_cast<uint8_t>(rng());
  return out;
}

void SetTimeouts(int fd) {
  timeval tv{.tv_sec = kIoTimeoutSeconds, .tv_usec = 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

// Waits up to the I/O timeout for `events` on `fd`; false on timeout or error.
bool WaitFor(int fd, short events, absl::Time deadline) {
  while (true) {
    int left = static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now()));
    if (left <= 0) return false;
    pollfd pfd{.fd = fd, .events = events, .revents = 0};
    int n = ::poll(&pfd, 1, left);
    if (n > 0) return true;
    if (n < 0 && errno != EINTR) return false;
  }
}

// Sends everything; returns "" or what went wrong.
std::string SendAll(int fd, const uint8_t* data, size_t n) {
  const absl::Time deadline = absl::Now() + absl::Seconds(kIoTimeoutSeconds);
  size_t off = 0;
  while (off < n) {
    ssize_t w = ::send(fd, data + off, n - off, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && errno == EAGAIN && WaitFor(fd, POLLOUT, deadline)) continue;
    if (w <= 0) return absl::StrCat("send after ", off, " of ", n, " bytes: ", strerror(errno));
    off += static_cast<size_t>(w);
  }
  return "";
}

// The readers wait in poll() and then recv() without blocking, as an event loop does. A blocking
// recv() on a redirected socket can return EAGAIN when the socket is woken without data (a state
// change, the peer's RST: see DISABLED_AbortiveClose), which would make every test here flaky
// instead of testing what it names.
//
// Reads exactly `n` bytes (fewer on EOF, error or timeout; `error` says which).
std::vector<uint8_t> RecvExactly(int fd, size_t n, std::string* error) {
  const absl::Time deadline = absl::Now() + absl::Seconds(kIoTimeoutSeconds);
  std::vector<uint8_t> out(n);
  size_t off = 0;
  while (off < n) {
    if (!WaitFor(fd, POLLIN, deadline)) {
      *error = absl::StrCat("recv after ", off, " of ", n, " bytes: timed out");
      break;
    }
    ssize_t r = ::recv(fd, out.data() + off, n - off, MSG_DONTWAIT);
    if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (r <= 0) {
      *error =
          absl::StrCat("recv after ", off, " of ", n, " bytes: ", r == 0 ? "EOF" : strerror(errno));
      break;
    }
    off += static_cast<size_t>(r);
  }
  out.resize(off);
  return out;
}

// Reads until EOF (or error/timeout, reported in `error`).
std::vector<uint8_t> RecvUntilEof(int fd, std::string* error) {
  const absl::Time deadline = absl::Now() + absl::Seconds(kIoTimeoutSeconds);
  std::vector<uint8_t> out;
  uint8_t buf[65536];
  while (true) {
    if (!WaitFor(fd, POLLIN, deadline)) {
      *error = absl::StrCat("recv after ", out.size(), " bytes: timed out");
      return out;
    }
    ssize_t r = ::recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (r < 0) {
      *error = absl::StrCat("recv after ", out.size(), " bytes: ", strerror(errno));
      return out;
    }
    if (r == 0) return out;
    out.insert(out.end(), buf, buf + r);
  }
}

// Where the first difference is, for a readable failure instead of a 16 MiB dump.
std::string FirstDifference(const std::vector<uint8_t>& want, const std::vector<uint8_t>& got) {
  if (want == got) return "";
  size_t n = std::min(want.size(), got.size());
  for (size_t i = 0; i < n; ++i) {
    if (want[i] != got[i]) {
      return absl::StrCat("first difference at byte ", i, " of ", want.size(), " (got ", got.size(),
                          " bytes)");
    }
  }
  return absl::StrCat("sizes differ: want ", want.size(), ", got ", got.size());
}

// A connected loopback TCP pair; the listener is gone once both ends exist.
struct Pair {
  UniqueFd client;
  UniqueFd server;
};

enum class Family { kV4, kV6, kV4ClientDualStackServer };

// A fresh listener address in 127.77.0.0/16 for every pair (network order). Thousands of
// connections per test leave TIME_WAIT sockets; on one address they would exhaust its ephemeral
// ports for the listeners of later tests (and of everything else on 127.0.0.1).
in_addr_t NextLoopbackAddress() {
  static std::atomic<uint32_t> next{static_cast<uint32_t>(::getpid()) * 7919u};
  uint32_t n = next++ % 65024u + 256u;  // skip 127.77.0.x
  return htonl((127u << 24) | (77u << 16) | n);
}

std::optional<Pair> ConnectPair(Family family = Family::kV4) {
  const bool v6_listener = family != Family::kV4;
  UniqueFd listener(::socket(v6_listener ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!listener.valid()) return std::nullopt;
  int one = 1;
  ::setsockopt(listener.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_storage ss{};
  socklen_t len;
  if (v6_listener) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    // Dual stack for the v4-mapped case: an AF_INET client reaches an AF_INET6 socket.
    a->sin6_addr = family == Family::kV6 ? in6addr_loopback : in6addr_any;
    int zero = 0;
    ::setsockopt(listener.get(), IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
    len = sizeof(sockaddr_in6);
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = NextLoopbackAddress();
    len = sizeof(sockaddr_in);
  }
  if (::bind(listener.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0 ||
      ::listen(listener.get(), 1024) != 0 ||
      ::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    return std::nullopt;
  }
  sockaddr_storage dst{};
  socklen_t dst_len;
  int client_family;
  if (family == Family::kV6) {
    dst = ss;
    dst_len = sizeof(sockaddr_in6);
    client_family = AF_INET6;
  } else {
    auto* d = reinterpret_cast<sockaddr_in*>(&dst);
    d->sin_family = AF_INET;
    d->sin_addr.s_addr =
        v6_listener ? NextLoopbackAddress() : reinterpret_cast<sockaddr_in*>(&ss)->sin_addr.s_addr;
    d->sin_port = v6_listener ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                              : reinterpret_cast<sockaddr_in*>(&ss)->sin_port;
    dst_len = sizeof(sockaddr_in);
    client_family = AF_INET;
  }
  Pair p;
  p.client = UniqueFd(::socket(client_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!p.client.valid()) return std::nullopt;
  SetTimeouts(p.client.get());
  if (::connect(p.client.get(), reinterpret_cast<sockaddr*>(&dst), dst_len) != 0) {
    return std::nullopt;
  }
  p.server = UniqueFd(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  if (!p.server.valid()) return std::nullopt;
  SetTimeouts(p.server.get());
  return p;
}

// Sends `a` client->server and `b` server->client at the same time (threads, so that neither
// direction's full buffer blocks the other) and checks both arrive intact.
void ExchangeBothWays(Pair& p, const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  std::string send_a_err, send_b_err, recv_b_err, recv_a_err;
  std::vector<uint8_t> got_b;
  std::thread tx_a([&] { send_a_err = SendAll(p.client.get(), a.data(), a.size()); });
  std::thread tx_b([&] { send_b_err = SendAll(p.server.get(), b.data(), b.size()); });
  std::thread rx_b([&] { got_b = RecvExactly(p.client.get(), b.size(), &recv_b_err); });
  std::vector<uint8_t> got_a = RecvExactly(p.server.get(), a.size(), &recv_a_err);
  tx_a.join();
  tx_b.join();
  rx_b.join();
  EXPECT_EQ(send_a_err, "");
  EXPECT_EQ(send_b_err, "");
  EXPECT_EQ(recv_a_err, "");
  EXPECT_EQ(recv_b_err, "");
  EXPECT_EQ(FirstDifference(a, got_a), "") << "client->server, " << a.size() << " bytes";
  EXPECT_EQ(FirstDifference(b, got_b), "") << "server->client, " << b.size() << " bytes";
}

double ProcessCpuSeconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

class ShortCircuitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // 1,000 connections are 2,000 fds.
    rlimit rl{};
    ::getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < 8192) {
      rl.rlim_cur = std::min<rlim_t>(8192, rl.rlim_max < 8192 ? 8192 : rl.rlim_max);
      if (rl.rlim_max < rl.rlim_cur) rl.rlim_max = rl.rlim_cur;
      ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &rl), 0) << strerror(errno);
    }
    auto dp = TestDatapath::Create(1021, {}, /*short_circuit=*/true);
    ASSERT_TRUE(dp.ok()) << "cannot attach the datapath (needs root, BPF, cgroup v2): "
                         << dp.status();
    dp_ = *std::move(dp);
    ASSERT_TRUE(dp_->datapath().short_circuit_attached());
    redirects_before_ = dp_->Counter(SM_CNT_SC_REDIRECT);
    passes_before_ = dp_->Counter(SM_CNT_SC_PASS);
  }

  void TearDown() override {
    if (!dp_) return;
    // Closed sockets leave the sockhash at close(); allow a moment for a peer's final close.
    size_t left = SockPairsEntries();
    for (int i = 0; i < 40 && left != 0; ++i) {
      ::usleep(50 * 1000);
      left = SockPairsEntries();
    }
    EXPECT_EQ(left, 0u) << "sockets left in sm_sock_pairs_v1 after every socket closed";
    EXPECT_EQ(dp_->Counter(SM_CNT_SC_INSERT_FAIL), 0u);
    if (expect_redirects_) {
      EXPECT_GT(Redirects(), 0u) << "the data did not go through the short-circuit";
    }
  }

  uint64_t Redirects() { return dp_->Counter(SM_CNT_SC_REDIRECT) - redirects_before_; }
  uint64_t Passes() { return dp_->Counter(SM_CNT_SC_PASS) - passes_before_; }

  size_t SockPairsEntries() {
    int fd = dp_->datapath().sock_pairs_fd();
    size_t n = 0;
    sm_sock_key key{};
    sm_sock_key next{};
    const void* prev = nullptr;
    while (n < 100000 && bpf_map_get_next_key(fd, prev, &next) == 0) {
      ++n;
      key = next;
      prev = &key;
    }
    return n;
  }

  Pair MustConnect(Family family = Family::kV4) {
    std::optional<Pair> p = ConnectPair(family);
    EXPECT_TRUE(p.has_value()) << "loopback connect: " << strerror(errno);
    return p ? *std::move(p) : Pair{};
  }

  std::unique_ptr<TestDatapath> dp_;
  uint64_t redirects_before_ = 0;
  uint64_t passes_before_ = 0;
  bool expect_redirects_ = true;
};

TEST_F(ShortCircuitTest, MessageSizesBothWays) {
  uint64_t seed = 1;
  for (size_t size :
       {size_t{1}, size_t{1024}, size_t{64 * 1024}, size_t{1 << 20}, size_t{16 << 20}}) {
    SCOPED_TRACE(absl::StrCat(size, " bytes each way"));
    Pair p = MustConnect();
    ASSERT_TRUE(p.client.valid());
    // Both sockets are in the sockhash while connected.
    EXPECT_EQ(SockPairsEntries(), 2u);
    ExchangeBothWays(p, RandomBytes(size, seed), RandomBytes(size, seed + 1));
    seed += 2;
  }
}

// The sockhash keys are each socket's 4-tuple in network byte order, as getsockname() and
// getpeername() report it (bpf_sock_ops gives local_port in host order and remote_port shifted).
TEST_F(ShortCircuitTest, KeysAreTheFourTupleInNetworkOrder) {
  Pair p = MustConnect();
  ASSERT_TRUE(p.client.valid());
  sockaddr_in self{}, peer{};
  socklen_t len = sizeof(self);
  ASSERT_EQ(::getsockname(p.client.get(), reinterpret_cast<sockaddr*>(&self), &len), 0);
  len = sizeof(peer);
  ASSERT_EQ(::getpeername(p.client.get(), reinterpret_cast<sockaddr*>(&peer), &len), 0);
  sm_sock_key client{};
  client.local[0] = self.sin_addr.s_addr;
  client.remote[0] = peer.sin_addr.s_addr;
  client.local_port = self.sin_port;
  client.remote_port = peer.sin_port;
  client.family = SM_FAMILY_V4;
  sm_sock_key server{};
  server.local[0] = peer.sin_addr.s_addr;
  server.remote[0] = self.sin_addr.s_addr;
  server.local_port = peer.sin_port;
  server.remote_port = self.sin_port;
  server.family = SM_FAMILY_V4;
  uint64_t cookie = 0;
  // A sockhash lookup from userspace returns the socket cookie.
  int fd = dp_->datapath().sock_pairs_fd();
  EXPECT_EQ(bpf_map_lookup_elem(fd, &client, &cookie), 0) << "client key: " << strerror(errno);
  EXPECT_EQ(bpf_map_lookup_elem(fd, &server, &cookie), 0) << "server key: " << strerror(errno);
  ExchangeBothWays(p, RandomBytes(1000, 16), RandomBytes(1000, 17));
}

TEST_F(ShortCircuitTest, Ipv6Loopback) {
  Pair p = MustConnect(Family::kV6);
  ASSERT_TRUE(p.client.valid());
  EXPECT_EQ(SockPairsEntries(), 2u);
  ExchangeBothWays(p, RandomBytes(1 << 20, 11), RandomBytes(1 << 20, 12));
}

// An AF_INET client and an AF_INET6 dual-stack server socket (v4-mapped addresses): the keys are
// normalised to IPv4, so each finds the other.
TEST_F(ShortCircuitTest, V4MappedDualStackServer) {
  Pair p = MustConnect(Family::kV4ClientDualStackServer);
  ASSERT_TRUE(p.client.valid());
  uint64_t before = Redirects();
  ExchangeBothWays(p, RandomBytes(1 << 20, 21), RandomBytes(1 << 20, 22));
  EXPECT_GT(Redirects(), before);
}

TEST_F(ShortCircuitTest, TenThousandSmallWrites) {
  Pair p = MustConnect();
  ASSERT_TRUE(p.client.valid());
  constexpr size_t kWrites = 10000;
  constexpr size_t kChunk = 7;
  std::vector<uint8_t> data = RandomBytes(kWrites * kChunk, 3);
  std::string send_err;
  std::thread tx([&] {
    for (size_t i = 0; i < kWrites && send_err.empty(); ++i) {
      send_err = SendAll(p.client.get(), data.data() + i * kChunk, kChunk);
    }
  });
  std::string recv_err;
  std::vector<uint8_t> got = RecvExactly(p.server.get(), data.size(), &recv_err);
  tx.join();
  EXPECT_EQ(send_err, "");
  EXPECT_EQ(recv_err, "");
  EXPECT_EQ(FirstDifference(data, got), "");
  // sk_msg runs per sendmsg: nearly every write was redirected on its own.
  EXPECT_GE(Redirects(), kWrites);
}

TEST_F(ShortCircuitTest, Writev) {
  Pair p = MustConnect();
  ASSERT_TRUE(p.client.valid());
  const std::vector<size_t> sizes = {1, 100, 4096, 65536, 3, 200000, 17};
  size_t total = 0;
  for (size_t s : sizes) total += s;
  constexpr int kRounds = 8;
  std::vector<uint8_t> data = RandomBytes(total * kRounds, 4);
  std::string send_err;
  std::thread tx([&] {
    for (int r = 0; r < kRounds && send_err.empty(); ++r) {
      size_t base = static_cast<size_t>(r) * total;
      std::vector<iovec> iov;
      size_t off = 0;
      for (size_t s : sizes) {
        iov.push_back({.iov_base = data.data() + base + off, .iov_len = s});
        off += s;
      }
      // writev may be partial: advance through the iovecs until the round is sent.
      size_t done = 0;
      size_t first = 0;
      while (done < total) {
        ssize_t w =
            ::writev(p.client.get(), iov.data() + first, static_cast<int>(iov.size() - first));
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
          send_err = absl::StrCat("writev: ", strerror(errno));
          return;
        }
        done += static_cast<size_t>(w);
        size_t left = static_cast<size_t>(w);
        while (first < iov.size() && left >= iov[first].iov_len) left -= iov[first++].iov_len;
        if (first < iov.size()) {
          iov[first].iov_base = static_cast<uint8_t*>(iov[first].iov_base) + left;
          iov[first].iov_len -= left;
        }
      }
    }
  });
  std::string recv_err;
  std::vector<uint8_t> got = RecvExactly(p.server.get(), data.size(), &recv_err);
  tx.join();
  EXPECT_EQ(send_err, "");
  EXPECT_EQ(recv_err, "");
  EXPECT_EQ(FirstDifference(data, got), "");
}

// A temporary file, removed on destruction.
class TempFile {
 public:
  TempFile() {
    char tmpl[] = "/tmp/sockmesh-sc-XXXXXX";
    fd_ = UniqueFd(::mkstemp(tmpl));
    if (fd_.valid()) path_ = tmpl;
  }
  ~TempFile() {
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  int fd() const { return fd_.get(); }
  std::vector<uint8_t> Contents() const {
    std::vector<uint8_t> out;
    uint8_t buf[65536];
    off_t off = 0;
    ssize_t r;
    while ((r = ::pread(fd_.get(), buf, sizeof(buf), off)) > 0) {
      out.insert(out.end(), buf, buf + r);
      off += r;
    }
    return out;
  }

 private:
  UniqueFd fd_;
  std::string path_;
};

// sendfile() from a file into the socket; the receiver uses plain recv().
TEST_F(ShortCircuitTest, SendfileFromFile) {
  Pair p = MustConnect();
  ASSERT_TRUE(p.client.valid());
  std::vector<uint8_t> data = RandomBytes(4 << 20, 5);
  TempFile file;
  ASSERT_GE(file.fd(), 0);
  ASSERT_EQ(::pwrite(file.fd(), data.data(), data.size(), 0), static_cast<ssize_t>(data.size()));
  std::string send_err;
  std::thread tx([&] {
    off_t off = 0;
    while (static_cast<size_t>(off) < data.size()) {
      ssize_t w = ::sendfile(p.client.get(), file.fd(), &off, data.size() - off);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        send_err = absl::StrCat("sendfile after ", off, " bytes: ", strerror(errno));
        return;
      }
    }
  });
  std::string recv_err;
  std::vector<uint8_t> got = RecvExactly(p.server.get(), data.size(), &recv_err);
  tx.join();
  EXPECT_EQ(send_err, "");
  EXPECT_EQ(recv_err, "");
  EXPECT_EQ(FirstDifference(data, got), "");
}

// The receiver moves the data socket -> pipe -> file with splice(); the sender uses send().
// Non-blocking splice plus poll(), so a receive path that never sees the data fails in bounded
// time instead of hanging.
//
// KERNEL ISSUE (seen on 6.18), hence DISABLED_ (run with --gtest_also_run_disabled_tests):
// splice() from the receiving socket never returns data (EAGAIN while poll() says readable). The
// redirected data sits on the socket's sk_msg ingress queue, which tcp_splice_read() does not
// read; only recv()/read() do. See README "Same-node short-circuit: known limits".
TEST_F(ShortCircuitTest, DISABLED_SpliceSocketToPipeToFile) {
  Pair p = MustConnect();
  ASSERT_TRUE(p.client.valid());
  std::vector<uint8_t> data = RandomBytes(4 << 20, 6);
  TempFile out;
  ASSERT_GE(out.fd(), 0);
  int pipefd[2];
  ASSERT_EQ(::pipe2(pipefd, O_CLOEXEC), 0);
  UniqueFd pipe_r(pipefd[0]);
  UniqueFd pipe_w(pipefd[1]);
  std::string send_err;
  std::thread tx([&] { send_err = SendAll(p.client.get(), data.data(), data.size()); });
  size_t moved = 0;
  std::string splice_err;
  const absl::Time deadline = absl::Now() + absl::Seconds(kIoTimeoutSeconds);
  while (moved < data.size() && splice_err.empty()) {
    if (absl::Now() > deadline) {
      splice_err = absl::StrCat("no more data by splice() after ", moved, " of ", data.size(),
                                " bytes (", kIoTimeoutSeconds, " s)");
      break;
    }
    pollfd pfd{.fd = p.server.get(), .events = POLLIN, .revents = 0};
    if (::poll(&pfd, 1, 200) < 0 && errno != EINTR) {
      splice_err = absl::StrCat("poll: ", strerror(errno));
      break;
    }
    ssize_t in = ::splice(p.server.get(), nullptr, pipe_w.get(), nullptr, 1 << 16,
                          SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (in < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (in <= 0) {
      splice_err = absl::StrCat("splice socket->pipe after ", moved,
                                " bytes: ", in == 0 ? "EOF" : strerror(errno));
      break;
    }
    for (ssize_t left = in; left > 0;) {
      loff_t off = static_cast<loff_t>(moved);
      ssize_t w =
          ::splice(pipe_r.get(), nullptr, out.fd(), &off, static_cast<size_t>(left), SPLICE_F_MOVE);
      if (w <= 0) {
        splice_err = absl::StrCat("splice pipe->file: ", strerror(errno));
        break;
      }
      left -= w;
      moved += static_cast<size_t>(w);
    }
  }
  // Unblock the sender if the receiver gave up.
  if (!splice_err.empty()) ::shutdown(p.server.get(), SHUT_RDWR);
  tx.join();
  EXPECT_EQ(splice_err, "");
  if (splice_err.empty()) {
    EXPECT_EQ(send_err, "");
  }
  EXPECT_EQ(FirstDifference(data, out.Contents()), "");
}

// Client writes N bytes and shuts down its write side; the server reads them all and then EOF,
// replies and closes; the client reads the whole reply and then EOF.
TEST_F(ShortCircuitTest, HalfClose) {
  Pair p = MustConnect();
  ASSERT_TRUE(p.client.valid());
  std::vector<uint8_t> request = RandomBytes(300000, 7);
  std::vector<uint8_t> reply = RandomBytes(500000, 8);
  std::string server_err;
  std::vector<uint8_t> server_got;
  std::thread server([&] {
    server_got = RecvUntilEof(p.server.get(), &server_err);
    if (!server_err.empty()) return;
    server_err = SendAll(p.server.get(), reply.data(), reply.size());
    p.server.Reset();
  });
  EXPECT_EQ(SendAll(p.client.get(), request.data(), request.size()), "");
  ASSERT_EQ(::shutdown(p.client.get(), SHUT_WR), 0);
  std::string client_err;
  std::vector<uint8_t> client_got = RecvUntilEof(p.client.get(), &client_err);
  server.join();
  EXPECT_EQ(server_err, "");
  EXPECT_EQ(client_err, "");
  EXPECT_EQ(FirstDifference(request, server_got), "");
  EXPECT_EQ(FirstDifference(reply, client_got), "");
}

// An abortive close (SO_LINGER 0 sends RST) while the peer waits in recv(): the peer must see
// ECONNRESET or EOF promptly, not hang. Also with data still unread by the peer.
//
// KERNEL ISSUE (seen on 6.18), hence DISABLED_: the blocked recv() of the peer returns promptly
// but with EAGAIN, on a blocking socket whose SO_RCVTIMEO has not expired; only the next recv()
// returns ECONNRESET. tcp_bpf_recvmsg() turns any wake-up that finds no queued data into -EAGAIN
// instead of waiting again or reporting sk_err. The same spurious EAGAIN hit a blocking reader in
// the half-close case in about 1 run of 7 (its own FIN's state change woke it), which is why the
// other tests read with poll() first. A blocked reader at the peer's orderly close does get EOF
// (OrderlyCloseWakesBlockedReader).
TEST_F(ShortCircuitTest, DISABLED_AbortiveClose) {
  for (bool pending_data : {false, true}) {
    SCOPED_TRACE(pending_data ? "with unread data" : "idle");
    Pair p = MustConnect();
    ASSERT_TRUE(p.client.valid());
    std::vector<uint8_t> data = RandomBytes(100000, 9);
    if (pending_data) {
      ASSERT_EQ(SendAll(p.client.get(), data.data(), data.size()), "");
    } else {
      // One exchange so that the path is known to be in use before the abort.
      ExchangeBothWays(p, RandomBytes(10, 10), RandomBytes(10, 11));
    }
    std::atomic<int> server_errno{-1};
    std::atomic<bool> server_eof{false};
    std::thread server([&] {
      uint8_t buf[65536];
      while (true) {
        ssize_t r = ::recv(p.server.get(), buf, sizeof(buf), 0);
        if (r > 0) continue;  // unread data may or may not be delivered before the reset
        if (r == 0) {
          server_eof = true;
        } else {
          server_errno = errno;
        }
        return;
      }
    });
    ::usleep(100 * 1000);  // let the server block in recv()
    linger lg{.l_onoff = 1, .l_linger = 0};
    ASSERT_EQ(::setsockopt(p.client.get(), SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
    const absl::Time start = absl::Now();
    p.client.Reset();
    server.join();
    EXPECT_LT(absl::Now() - start, absl::Seconds(2)) << "the peer noticed the reset only late";
    EXPECT_TRUE(server_eof || server_errno == ECONNRESET)
        << "peer got " << (server_errno >= 0 ? strerror(server_errno) : "nothing");
  }
}

// An orderly close (FIN) while the peer is blocked in recv(): the peer must get EOF (0) promptly.
TEST_F(ShortCircuitTest, OrderlyCloseWakesBlockedReader) {
  Pair p = MustConnect();
  ASSERT_TRUE(p.client.valid());
  ExchangeBothWays(p, RandomBytes(10, 14), RandomBytes(10, 15));
  ssize_t result = -2;
  int result_errno = 0;
  std::thread server([&] {
    uint8_t buf[256];
    result = ::recv(p.server.get(), buf, sizeof(buf), 0);
    result_errno = errno;
  });
  ::usleep(100 * 1000);  // let the server block in recv()
  const absl::Time start = absl::Now();
  p.client.Reset();
  server.join();
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  EXPECT_EQ(result, 0) << "recv() on the peer of a closed socket: " << strerror(result_errno);
}

// Both ends close at the same moment, many times: nothing hangs, nothing stays in the sockhash.
TEST_F(ShortCircuitTest, BothEndsCloseAtOnce) {
  for (int i = 0; i < 200; ++i) {
    Pair p = MustConnect();
    ASSERT_TRUE(p.client.valid());
    ExchangeBothWays(p, RandomBytes(1000, 100 + i), RandomBytes(1000, 1000 + i));
    std::atomic<bool> go{false};
    std::thread a([&] {
      while (!go) {
      }
      p.client.Reset();
    });
    std::thread b([&] {
      while (!go) {
      }
      p.server.Reset();
    });
    go = true;
    a.join();
    b.join();
    if (HasFailure()) break;
  }
}

// 1,000 connections open at once, each a small request and response, served by 4 threads.
TEST_F(ShortCircuitTest, ThousandConcurrentConnections) {
  constexpr int kConns = 1000;
  std::vector<Pair> pairs;
  pairs.reserve(kConns);
  for (int i = 0; i < kConns; ++i) {
    std::optional<Pair> p = ConnectPair();
    ASSERT_TRUE(p.has_value()) << "connection " << i << ": " << strerror(errno);
    pairs.push_back(*std::move(p));
  }
  EXPECT_EQ(SockPairsEntries(), 2u * kConns);
  std::atomic<int> failures{0};
  std::string first_failure;
  std::vector<std::thread> workers;
  for (int w = 0; w < 4; ++w) {
    workers.emplace_back([&, w] {
      for (int i = w; i < kConns; i += 4) {
        std::vector<uint8_t> req = RandomBytes(64, 5000 + i);
        std::vector<uint8_t> resp = RandomBytes(128, 9000 + i);
        std::string err = SendAll(pairs[i].client.get(), req.data(), req.size());
        std::vector<uint8_t> got_req;
        if (err.empty()) got_req = RecvExactly(pairs[i].server.get(), req.size(), &err);
        if (err.empty()) err = SendAll(pairs[i].server.get(), resp.data(), resp.size());
        std::vector<uint8_t> got_resp;
        if (err.empty()) got_resp = RecvExactly(pairs[i].client.get(), resp.size(), &err);
        if (err.empty() && (got_req != req || got_resp != resp)) err = "data differs";
        if (!err.empty() && failures++ == 0) first_failure = absl::StrCat("conn ", i, ": ", err);
      }
    });
  }
  for (std::thread& t : workers) t.join();
  EXPECT_EQ(failures, 0) << first_failure;
  EXPECT_GE(Redirects(), 2u * kConns);
  pairs.clear();
}

// A reader that stops reading: a non-blocking writer must eventually get EAGAIN (not an error,
// not silently dropped data), must not burn CPU while it waits in poll(), and once the reader
// resumes every byte arrives intact and in order.
//
// KERNEL ISSUE (seen on 6.18), hence DISABLED_: there is no per-socket back-pressure. Sends to a
// peer that does not read keep succeeding, the data piling up on the peer's ingress queue, until
// the host-wide TCP memory limit (net.ipv4.tcp_mem) is reached: then send() fails with ENOMEM
// (after ~1.5 GB here), and every TCP socket on the host is under memory pressure.
TEST_F(ShortCircuitTest, DISABLED_BackPressure) {
  Pair p = MustConnect();
  ASSERT_TRUE(p.client.valid());
  ASSERT_EQ(::fcntl(p.client.get(), F_SETFL, O_NONBLOCK), 0);
  // Ten times the largest default receive buffer (tcp_rmem max 6 MiB): EAGAIN must come well
  // before. Not more: on a kernel without back-pressure every byte stays in kernel memory.
  constexpr size_t kMaxBuffered = size_t{64} << 20;
  constexpr size_t kChunk = 64 << 10;
  // The stream is RandomBytes-derived per chunk index, so it need not be held in memory at once.
  std::vector<uint8_t> pattern = RandomBytes(kChunk * 16, 12);
  auto byte_at = [&](size_t i) { return pattern[(i * 7 + i / pattern.size()) % pattern.size()]; };
  std::vector<uint8_t> chunk(kChunk);
  size_t written = 0;
  auto write_some = [&]() -> ssize_t {
    for (size_t i = 0; i < kChunk; ++i) chunk[i] = byte_at(written + i);
    ssize_t w = ::send(p.client.get(), chunk.data(), kChunk, MSG_NOSIGNAL);
    if (w > 0) written += static_cast<size_t>(w);
    return w;
  };
  // Fill until EAGAIN.
  bool eagain = false;
  while (written < kMaxBuffered) {
    ssize_t w = write_some();
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      eagain = true;
      break;
    }
    ASSERT_GT(w, 0) << "send after " << written << " bytes: " << strerror(errno);
  }
  ASSERT_TRUE(eagain) << "no EAGAIN after " << written << " bytes to a reader that does not read";
  const size_t at_eagain = written;

  // Wait ~1 s for writability the way an event loop would; count the CPU that costs.
  const double cpu_start = ProcessCpuSeconds();
  const absl::Time until = absl::Now() + absl::Seconds(1);
  int wakeups = 0;
  while (absl::Now() < until) {
    pollfd pfd{.fd = p.client.get(), .events = POLLOUT, .revents = 0};
    int left = static_cast<int>(absl::ToInt64Milliseconds(until - absl::Now()));
    if (::poll(&pfd, 1, std::max(left, 1)) > 0) {
      ++wakeups;
      ssize_t w = write_some();
      if (w < 0) {
        ASSERT_TRUE(errno == EAGAIN || errno == EWOULDBLOCK) << strerror(errno);
      }
    }
  }
  const double cpu = ProcessCpuSeconds() - cpu_start;
  EXPECT_LT(cpu, 0.25) << "CPU seconds spent while the writer was blocked (" << wakeups
                       << " poll wake-ups)";
  EXPECT_LT(written - at_eagain, size_t{16} << 20) << "the writer kept writing with no reader";

  // Resume reading: everything written so far, then 4 MiB more, arrives in order.
  const size_t total = written + (4 << 20);
  std::atomic<bool> reader_done{false};
  std::string recv_err;
  size_t received = 0;
  size_t first_bad = SIZE_MAX;
  std::thread reader([&] {
    std::vector<uint8_t> buf(1 << 16);
    while (received < total) {
      ssize_t r = ::recv(p.server.get(), buf.data(), buf.size(), 0);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) {
        recv_err = r == 0 ? "EOF" : strerror(errno);
        break;
      }
      for (ssize_t i = 0; i < r && first_bad == SIZE_MAX; ++i) {
        if (buf[i] != byte_at(received + i)) first_bad = received + i;
      }
      received += static_cast<size_t>(r);
    }
    reader_done = true;
  });
  const absl::Time deadline = absl::Now() + absl::Seconds(kIoTimeoutSeconds);
  while (written < total && absl::Now() < deadline) {
    pollfd pfd{.fd = p.client.get(), .events = POLLOUT, .revents = 0};
    ::poll(&pfd, 1, 100);
    if (written + kChunk > total) {
      // The last, partial chunk.
      size_t n = total - written;
      for (size_t i = 0; i < n; ++i) chunk[i] = byte_at(written + i);
      ssize_t w = ::send(p.client.get(), chunk.data(), n, MSG_NOSIGNAL);
      if (w > 0) written += static_cast<size_t>(w);
      continue;
    }
    ssize_t w = write_some();
    if (w < 0) {
      ASSERT_TRUE(errno == EAGAIN || errno == EWOULDBLOCK) << strerror(errno);
    }
  }
  EXPECT_EQ(written, total) << "the writer could not finish after the reader resumed";
  if (written < total) ::shutdown(p.server.get(), SHUT_RDWR);
  reader.join();
  EXPECT_EQ(recv_err, "");
  EXPECT_EQ(received, total);
  EXPECT_EQ(first_bad, SIZE_MAX) << "first wrong byte at " << first_bad;
}

// A peer in a process outside the mesh cgroup: the mesh client's sends find no peer in the
// sockhash and take the normal TCP path (pass counted, no redirect), with the data intact.
TEST_F(ShortCircuitTest, PeerOutsideMeshTakesNormalPath) {
  expect_redirects_ = false;
  absl::StatusOr<ScopedCgroup> outside = ScopedCgroup::Create();
  ASSERT_TRUE(outside.ok()) << outside.status();
  int port_pipe[2];
  ASSERT_EQ(::pipe2(port_pipe, O_CLOEXEC), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0) << strerror(errno);
  if (child == 0) {
    // An echo server in the other cgroup: one connection, until EOF. Raw syscalls only.
    ::close(port_pipe[0]);
    std::string procs = outside->path() + "/cgroup.procs";
    int cg = ::open(procs.c_str(), O_WRONLY);
    if (cg < 0 || ::write(cg, "0", 1) != 1) ::_exit(2);
    ::close(cg);
    ::alarm(30);  // never outlive a stuck parent for long
    int l = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    if (::bind(l, reinterpret_cast<sockaddr*>(&a), len) != 0 || ::listen(l, 1) != 0 ||
        ::getsockname(l, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      ::_exit(3);
    }
    if (::write(port_pipe[1], &a.sin_port, sizeof(a.sin_port)) != sizeof(a.sin_port)) ::_exit(4);
    int c = ::accept(l, nullptr, nullptr);
    static char buf[65536];
    ssize_t r;
    while ((r = ::recv(c, buf, sizeof(buf), 0)) > 0) {
      for (ssize_t off = 0; off < r;) {
        ssize_t w = ::send(c, buf + off, static_cast<size_t>(r - off), MSG_NOSIGNAL);
        if (w <= 0) ::_exit(5);
        off += w;
      }
    }
    ::close(c);
    ::_exit(0);
  }
  ::close(port_pipe[1]);
  UniqueFd port_r(port_pipe[0]);
  // Kills and reaps this one child if the test ends early; never signals a reaped PID.
  struct ChildReaper {
    pid_t pid;
    bool reaped = false;
    ~ChildReaper() {
      if (reaped) return;
      ::kill(pid, SIGKILL);
      int st;
      ::waitpid(pid, &st, 0);
    }
  } reaper{child};
  pollfd pfd{.fd = port_r.get(), .events = POLLIN, .revents = 0};
  ASSERT_EQ(::poll(&pfd, 1, 5000), 1) << "the outside echo server did not start";
  in_port_t port = 0;
  ASSERT_EQ(::read(port_r.get(), &port, sizeof(port)), static_cast<ssize_t>(sizeof(port)));

  const uint64_t redirects = dp_->Counter(SM_CNT_SC_REDIRECT);
  UniqueFd c(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  SetTimeouts(c.get());
  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  dst.sin_port = port;
  ASSERT_EQ(::connect(c.get(), reinterpret_cast<sockaddr*>(&dst), sizeof(dst)), 0)
      << strerror(errno);
  // Only our (mesh) end is tracked; the outside peer is not.
  EXPECT_EQ(SockPairsEntries(), 1u);
  std::vector<uint8_t> data = RandomBytes(1 << 20, 13);
  std::string send_err;
  std::thread tx([&] { send_err = SendAll(c.get(), data.data(), data.size()); });
  std::string recv_err;
  std::vector<uint8_t> got = RecvExactly(c.get(), data.size(), &recv_err);
  tx.join();
  EXPECT_EQ(send_err, "");
  EXPECT_EQ(recv_err, "");
  EXPECT_EQ(FirstDifference(data, got), "");
  EXPECT_EQ(dp_->Counter(SM_CNT_SC_REDIRECT), redirects) << "redirected to a non-mesh peer";
  EXPECT_GT(Passes(), 0u);
  c.Reset();
  int status = 0;
  // The child exits at our EOF; wait for it (bounded) so the outside cgroup can be removed.
  for (int i = 0; i < 100 && !reaper.reaped; ++i) {
    if (::waitpid(child, &status, WNOHANG) == child) {
      reaper.reaped = true;
    } else {
      ::usleep(20 * 1000);
    }
  }
  EXPECT_TRUE(reaper.reaped && WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << "outside echo server status " << status;
}

}  // namespace
}  // namespace sockmesh::testing
