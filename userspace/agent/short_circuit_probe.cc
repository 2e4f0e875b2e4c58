// SPDX-License-Identifier: Apache-2.0
#include "userspace/agent/short_circuit_probe.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"

namespace sockmesh::agent {
namespace {

// Byte `i` of direction `dir`: differs per position and direction, so a reordered, duplicated,
// truncated or crossed stream is caught.
uint8_t PatternByte(size_t i, int dir) {
  return static_cast<uint8_t>((i * 131 + (i >> 8) * 7 + dir * 29 + 1) & 0xff);
}

// One direction of the exchange: what was sent and checked so far.
struct Stream {
  int out_fd;
  int in_fd;
  int dir;
  size_t sent = 0;
  size_t received = 0;
};

// The child's work. Returns "" on success, else why it failed. Only syscalls and small stack
// buffers: it runs in a fork of a process that may have had other threads.
// The peer of `out_fd` does not read: a sender must be stopped (EAGAIN) before `limit` bytes.
std::string CheckBackPressure(int out_fd, size_t limit) {
  static uint8_t buf[64 * 1024];
  size_t queued = 0;
  while (queued < limit) {
    ssize_t w = ::send(out_fd, buf, sizeof(buf), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return "";
    if (w <= 0) {
      char err[160];
      std::snprintf(err, sizeof(err), "%s: send failed after %zu bytes: %s", kNoBackPressure,
                    queued, std::strerror(errno));
      return err;
    }
    queued += static_cast<size_t>(w);
  }
  char err[200];
  std::snprintf(err, sizeof(err),
                "%s: %zu MiB queued to a peer that does not read, and send() never returned "
                "EAGAIN (this kernel's sk_msg redirect does not limit the receiver's queue)",
                kNoBackPressure, limit >> 20);
  return err;
}

std::string Exchange(const std::string& cgroup_path, size_t bytes, bool check_back_pressure) {
  char err[160];
  std::string procs = cgroup_path + "/cgroup.procs";
  int cg = ::open(procs.c_str(), O_WRONLY | O_CLOEXEC);
  if (cg < 0 || ::write(cg, "0", 1) != 1) {
    std::snprintf(err, sizeof(err), "cannot join %s: %s", procs.c_str(), std::strerror(errno));
    return err;
  }
  ::close(cg);
  int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  // A loopback address of its own (127.100-199.x.y), so that a host whose 127.0.0.1 ephemeral
  // ports are used up by TIME_WAIT sockets does not fail the probe; 127.0.0.1 as a fallback.
  uint32_t r = static_cast<uint32_t>(::getpid()) * 2654435761u;
  addr.sin_addr.s_addr = htonl((127u << 24) | ((100u + r % 100u) << 16) |
                               (((r >> 8) & 0xffu) << 8) | (1u + (r >> 16) % 254u));
  if (lfd >= 0 && ::bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  }
  socklen_t len = sizeof(addr);
  if (lfd < 0 ||
      (addr.sin_addr.s_addr == htonl(INADDR_LOOPBACK) &&
       ::bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) ||
      ::listen(lfd, 1) != 0 || ::getsockname(lfd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    std::snprintf(err, sizeof(err), "loopback listener: %s", std::strerror(errno));
    return err;
  }
  int cfd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (cfd < 0 || ::connect(cfd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    std::snprintf(err, sizeof(err), "loopback connect: %s", std::strerror(errno));
    return err;
  }
  int sfd = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
  if (sfd < 0) {
    std::snprintf(err, sizeof(err), "accept: %s", std::strerror(errno));
    return err;
  }
  ::fcntl(cfd, F_SETFL, O_NONBLOCK);
  ::fcntl(sfd, F_SETFL, O_NONBLOCK);
  // Both directions at once from one thread, so neither side's full buffer can block the other.
  Stream streams[2] = {{.out_fd = cfd, .in_fd = sfd, .dir = 0},
                       {.out_fd = sfd, .in_fd = cfd, .dir = 1}};
  static uint8_t buf[64 * 1024];
  while (streams[0].received < bytes || streams[1].received < bytes) {
    pollfd pfds[2] = {{.fd = cfd, .events = POLLIN, .revents = 0},
                      {.fd = sfd, .events = POLLIN, .revents = 0}};
    for (Stream& s : streams) {
      if (s.sent < bytes) pfds[s.dir].events |= POLLOUT;
    }
    if (::poll(pfds, 2, 1000) <= 0) return "no progress for 1 s";
    for (Stream& s : streams) {
      while (s.sent < bytes) {
        size_t n = std::min(sizeof(buf), bytes - s.sent);
        for (size_t i = 0; i < n; ++i) buf[i] = PatternByte(s.sent + i, s.dir);
        ssize_t w = ::send(s.out_fd, buf, n, MSG_NOSIGNAL);
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        if (w <= 0) {
          std::snprintf(err, sizeof(err), "send: %s", std::strerror(errno));
          return err;
        }
        s.sent += static_cast<size_t>(w);
      }
      while (s.received < bytes) {
        ssize_t r = ::recv(s.in_fd, buf, sizeof(buf), 0);
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        if (r <= 0) {
          std::snprintf(err, sizeof(err), "recv after %zu bytes: %s", s.received,
                        r == 0 ? "unexpected EOF" : std::strerror(errno));
          return err;
        }
        if (s.received + static_cast<size_t>(r) > bytes) return "received more bytes than sent";
        for (ssize_t i = 0; i < r; ++i) {
          if (buf[i] != PatternByte(s.received + static_cast<size_t>(i), s.dir)) {
            std::snprintf(err, sizeof(err), "%s byte %zu differs",
                          s.dir == 0 ? "client->server" : "server->client",
                          s.received + static_cast<size_t>(i));
            return err;
          }
        }
        s.received += static_cast<size_t>(r);
      }
    }
  }
  std::string verdict = check_back_pressure ? CheckBackPressure(cfd, kBackPressureLimit) : "";
  ::close(cfd);
  ::close(sfd);
  ::close(lfd);
  return verdict;
}

}  // namespace

absl::Status ProbeShortCircuit(const ShortCircuitProbeOptions& options) {
  absl::StatusOr<uint64_t> before = options.redirects();
  if (!before.ok()) return before.status();
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
  }
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(pipefd[0]);
    ::close(pipefd[1]);
    return absl::InternalError(absl::StrCat("fork: ", std::strerror(errno)));
  }
  if (pid == 0) {
    ::close(pipefd[0]);
    std::string why = Exchange(options.cgroup_path, options.bytes, options.check_back_pressure);
    (void)!::write(pipefd[1], why.data(), why.size());
    ::_exit(why.empty() ? 0 : 1);
  }
  ::close(pipefd[1]);
  // The child's verdict: EOF with nothing = success, text = failure, nothing by the deadline =
  // stall (the failure mode a broken redirect shows).
  std::string why;
  bool timed_out = false;
  absl::Time deadline = absl::Now() + options.timeout;
  while (true) {
    int left = static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now()));
    if (left <= 0) {
      timed_out = true;
      break;
    }
    pollfd p{.fd = pipefd[0], .events = POLLIN, .revents = 0};
    int n = ::poll(&p, 1, left);
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) continue;  // re-check the deadline
    char chunk[256];
    ssize_t r = ::read(pipefd[0], chunk, sizeof(chunk));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    why.append(chunk, static_cast<size_t>(r));
  }
  ::close(pipefd[0]);
  if (timed_out) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) {
    return absl::DeadlineExceededError(absl::StrCat("loopback exchange of ", options.bytes,
                                                    " bytes each way did not finish within ",
                                                    absl::FormatDuration(options.timeout)));
  }
  if (!why.empty()) return absl::DataLossError(why);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return absl::InternalError("probe child died without a verdict");
  }
  absl::StatusOr<uint64_t> after = options.redirects();
  if (!after.ok()) return after.status();
  if (*after == *before) {
    return absl::FailedPreconditionError(
        "data arrived intact but not through the redirect (counter did not move)");
  }
  return absl::OkStatus();
}

}  // namespace sockmesh::agent
